"""The layer x sector heatmap of a model's hidden layers (``mdsym equivariance
--layers-plot`` and ``hidden_layers.png`` of ``mdsym analyze --layers``)."""

import numpy as np

from mdsym.analysis.hidden_layers import content_matrix
from mdsym.reports.formatting import pyplot

#: smallest fraction the heatmap resolves (its colour scale is logarithmic)
HEATMAP_FLOOR = 1e-8


def plot_heatmap(layers: list, path, title: str) -> None:
    """Layer x sector heatmap of the fractions (log colour scale), forward order top
    to bottom, written to ``path`` (matplotlib, Agg backend)."""
    plt = pyplot()
    from matplotlib.colors import LogNorm  # start-up time: matplotlib, after pyplot() chose Agg

    names, sectors, matrix = content_matrix(layers)
    labels = [f"{name} [{layer['kind']}]" for name, layer in zip(names, layers)]
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * len(sectors) + 0.09 * max(map(len, labels)),
                                    1.6 + 0.36 * len(names)))
    image = ax.imshow(np.maximum(matrix, HEATMAP_FLOOR), norm=LogNorm(HEATMAP_FLOOR, 1.0),
                      cmap="viridis", aspect="auto")
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            if matrix[i, j] >= 1e-3:
                ax.text(j, i, f"{matrix[i, j]:.3g}", ha="center", va="center", fontsize=7,
                        color="black" if matrix[i, j] > 0.05 else "white")
    ax.set_xticks(range(len(sectors)), sectors)
    ax.set_yticks(range(len(names)), labels, fontsize=8)
    ax.set(xlabel="sector (lambda, sigma)", title=title)
    fig.colorbar(image, ax=ax, label="fraction of the squared norm")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
