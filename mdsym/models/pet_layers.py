"""Every hidden layer of a metatrain PET model, from its exported TorchScript file.

``mdsym analyze --layers`` and ``mdsym equivariance --layers`` measure the symmetry
content of each layer of the shipped PET models. An exported metatomic model is a
TorchScript module, and TorchScript modules do not run Python forward hooks, so the
layer outputs have to be reached another way. The options weighed (issue 11):

(a) rebuild metatrain's PET in Python from the hyperparameters and the exported
    weights, and hook it: needs ``metatrain`` at run time (about 20 more packages,
    53 MB: pydantic, huggingface_hub, omegaconf...; no other torch), pinned to the
    version that exported the file (module names and defaults change between
    releases), and the full hyperparameters, which an exported ``.pt`` does not carry
    (the shipped cards have them, a user's PET-MAD file does not);
(b) ship metatrain checkpoints next to the ``.pt`` files: the same run-time
    dependency on metatrain, and a second copy of every model to keep in step;
(c) this module: call the exported model's *own compiled submodules and methods*
    (RecursiveScriptModule children and methods are callable from Python) in the
    order PET's forward calls them, keeping each layer's output on the way;
(d) re-export the shipped models with extra per-layer outputs: needs a patched
    metatrain and replaces the shipped files; a user's PET file would not have them.

(c) needs nothing beyond the ``.pt`` file and works for any PET exported by the
metatrain generation that wrote the shipped models (2026.4: ``PETBackend`` with
``preprocess``/``calculate_features``/``predict``). Every number comes from the
model's own compiled code; what this module writes itself is only the glue between
those calls: ``PET.forward``, ``PETBackend._feedforward_featurization_impl`` /
``_residual_featurization_impl`` and ``CartesianTransformer.forward``, copied from
metatrain (BSD-3-Clause, ``metatrain/pet/modules/{backend,transformer}.py`` and
``metatrain/pet/model.py``). That glue is checked on every use: ``PetLayers`` also
runs the model's own ``forward`` on the same systems and refuses (MdsymError) unless
its energies equal the layer path's to float round-off, so the layers reported are
those of the model that runs the dynamics. A PET of another generation (other module
names, long-range or charge-conditioned models) gets one line saying so.

Layers, in forward order (``node`` per atom, ``edge`` per neighbour pair):

- ``embedding node``, ``embedding edge``: species embeddings (exactly invariant);
- per message-passing (GNN) layer ``g``: ``gnn{g} edge geometry`` (the linear
  embedding of ``[r_ij, |r_ij|]``), ``gnn{g} edge tokens`` (compressed with the
  incoming messages), ``gnn{g} attention{t} node|edge`` for each transformer layer,
  ``gnn{g} messages`` (the edge features passed on, after the reverse-edge
  combination);
- ``head node``, ``head edge``: the energy head's last-layer features;
- ``atomic energies``: node plus cutoff-weighted edge contributions per atom,
  before scaling;
- ``energy``: the model's output (scaled, plus the composition baseline).
"""

import torch
from metatensor.torch import Labels, TensorBlock, TensorMap
from metatomic.torch import ModelOutput

from mdsym.core.errors import MdsymError

#: the energy target whose head and output the layers follow
TARGET = "energy"


def _children(module) -> list:
    """Submodules of a scripted ModuleList/ModuleDict, in order (scripted containers
    cannot be indexed from Python, but can be iterated)."""
    return list(module.children())


class PetLayers:
    """Runs a scripted metatrain PET layer by layer; see the module docstring."""

    def __init__(self, pet, name: str = "model"):
        self.pet, self.name = pet, name
        if getattr(pet, "original_name", None) != "PET":
            raise MdsymError(f"model {name} is not a metatrain PET: mdsym cannot reach its hidden layers")
        try:
            backend = pet.backend
            known = set(backend._c._method_names())
            self.featurizer = backend.featurizer_type
            long_range = bool(pet.long_range)
            conditioned = getattr(backend, "system_conditioning", None) is not None
            targets = list(pet.target_names)
        except (AttributeError, RuntimeError):
            raise MdsymError(
                f"model {name}: a PET of another metatrain generation than the one mdsym's "
                "layer path follows (2026.4): its hidden layers cannot be reached"
            ) from None
        needed = {"preprocess", "_calculate_last_layer_features", "_calculate_atomic_predictions"}
        if not needed <= known or self.featurizer not in ("feedforward", "residual"):
            raise MdsymError(
                f"model {name}: a PET of another metatrain generation than the one mdsym's "
                "layer path follows (2026.4): its hidden layers cannot be reached"
            )
        if long_range or conditioned:
            what = "long-range features" if long_range else "charge/spin conditioning"
            raise MdsymError(f"model {name}: the layer path does not follow PET with {what}")
        if TARGET not in targets:
            raise MdsymError(f"model {name} has no '{TARGET}' target: no energy head to follow")
        self.backend = backend

    # ------------------------------------------------------------------ forward pass

    def run(self, systems: list) -> tuple:
        """``(layers, energy)`` for a batch of metatomic systems that share one
        neighbour list: ``layers`` maps each layer name, in forward order, to
        ``(kind, values)``, kind ``node`` (per atom), ``edge`` (per pair) or ``system``,
        values ``(B, features)`` per system; ``energy`` is ``(B,)``, the model's output."""
        pet, backend = self.pet, self.backend
        options = pet.requested_neighbor_lists()[0]
        (positions, centers, neighbors, species, cells, cell_shifts, system_indices,
         sample_labels) = _concatenate_structures(systems, options)
        batch = backend.preprocess(positions, centers, neighbors, species, cells, cell_shifts,
                                   system_indices, float(pet.cutoff_width_adaptive))
        mask = batch["padding_mask"]
        n_systems = len(systems)
        self._check_same_pairs(mask, n_systems)
        layers = {}

        def node(name, values):
            layers[name] = ("node", values.reshape(n_systems, -1))

        def edge(name, values):  # (atoms, max neighbours, features): real pairs only
            layers[name] = ("edge", values[mask].reshape(n_systems, -1))

        use_manual_attention = bool(batch["edge_vectors"].requires_grad and backend.training)
        if self.featurizer == "feedforward":
            node_list, edge_list = self._feedforward(batch, use_manual_attention, node, edge)
        else:
            node_list, edge_list = self._residual(batch, use_manual_attention, node, edge)

        node_heads, edge_heads = backend._calculate_last_layer_features(node_list, edge_list)
        for i, (n_head, e_head) in enumerate(zip(node_heads[TARGET], edge_heads[TARGET])):
            suffix = "" if len(node_heads[TARGET]) == 1 else f" {i}"
            node(f"head node{suffix}", n_head)
            edge(f"head edge{suffix}", e_head)
        atomic, _, _ = backend.predict(node_list, edge_list, batch, cells, system_indices, [TARGET])
        node("atomic energies", atomic[TARGET][0])
        energy = self._post_process(systems, atomic, sample_labels)
        layers["energy"] = ("system", energy.reshape(n_systems, 1))
        return layers, energy

    def _feedforward(self, batch, use_manual_attention, node, edge):
        """``PETBackend._feedforward_featurization_impl``."""
        backend = self.backend
        node_features = _children(backend.node_embedders)[0](batch["element_indices_nodes"])
        edge_features = backend.edge_embedder(batch["element_indices_neighbors"])
        node("embedding node", node_features)
        edge("embedding edge", edge_features)
        for g, (norm, mlp, gnn, post_node, post_edge) in enumerate(zip(
            _children(backend.combination_norms), _children(backend.combination_mlps),
            _children(backend.gnn_layers), _children(backend.gnn_layers_post_mp_node),
            _children(backend.gnn_layers_post_mp_edge),
        )):
            out_node, out_edge = self._gnn_layer(g, gnn, node_features, edge_features, batch,
                                                 use_manual_attention, node, edge)
            reversed_edge = out_edge.reshape(-1, out_edge.shape[2])[
                batch["reverse_neighbor_index"]].reshape(out_edge.shape)
            concatenated = torch.cat([out_edge, reversed_edge], dim=-1)
            edge_features = edge_features + out_edge + mlp(norm(concatenated))
            node_features = post_node(out_node)
            edge_features = post_edge(edge_features)
            edge(f"gnn{g} messages", edge_features)
        return [node_features], [edge_features]

    def _residual(self, batch, use_manual_attention, node, edge):
        """``PETBackend._residual_featurization_impl``."""
        backend = self.backend
        edge_features = backend.edge_embedder(batch["element_indices_neighbors"])
        edge("embedding edge", edge_features)
        node_list, edge_list = [], []
        for g, (embedder, gnn) in enumerate(zip(_children(backend.node_embedders),
                                                _children(backend.gnn_layers))):
            node_features = embedder(batch["element_indices_nodes"])
            node("embedding node" if g == 0 else f"gnn{g} embedding node", node_features)
            out_node, out_edge = self._gnn_layer(g, gnn, node_features, edge_features, batch,
                                                 use_manual_attention, node, edge)
            node_list.append(out_node)
            edge_list.append(out_edge)
            reversed_edge = out_edge.reshape(-1, out_edge.shape[2])[
                batch["reverse_neighbor_index"]].reshape(out_edge.shape)
            edge_features = 0.5 * (edge_features + reversed_edge)
            edge(f"gnn{g} messages", edge_features)
        return node_list, edge_list

    def _gnn_layer(self, g, gnn, node_features, messages, batch, use_manual_attention, node, edge):
        """``CartesianTransformer.forward``, keeping each transformer layer's output."""
        edge_vectors, distances = batch["edge_vectors"], batch["edge_distances"]
        padding_mask, cutoff_factors = batch["padding_mask"], batch["cutoff_factors"]
        geometry = torch.cat([edge_vectors, distances[:, :, None]], dim=2).to(edge_vectors.dtype)
        geometry = gnn.edge_embedder(geometry)
        edge(f"gnn{g} edge geometry", geometry)
        if not gnn.is_first:
            neighbour_species = gnn.neighbor_embedder(batch["element_indices_neighbors"])
            tokens = torch.cat([geometry, neighbour_species, messages], dim=2)
        else:
            tokens = torch.cat([geometry, messages], dim=2)
        tokens = gnn.compress(tokens)
        edge(f"gnn{g} edge tokens", tokens)

        central = torch.ones(padding_mask.shape[0], dtype=torch.bool, device=padding_mask.device)
        total_mask = torch.cat([central[:, None], padding_mask], dim=1)
        ones = torch.ones(padding_mask.shape[0], dtype=cutoff_factors.dtype, device=padding_mask.device)
        factors = torch.cat([ones[:, None], cutoff_factors], dim=1)
        factors[~total_mask] = 0.0
        factors = factors[:, None, :]
        factors = factors.repeat(1, factors.shape[2], 1)
        initial_tokens, max_tokens = edge_vectors.shape[1], messages.shape[1]
        factors = factors[:, : max_tokens + 1, : max_tokens + 1]

        node_tokens, edge_tokens = node_features[:, None, :], tokens[:, :max_tokens, :]
        for t, layer in enumerate(_children(gnn.trans.layers)):
            node_tokens, edge_tokens = layer(node_tokens, edge_tokens, factors, use_manual_attention)
            node(f"gnn{g} attention{t} node", node_tokens[:, 0, :])
            if max_tokens == initial_tokens:
                edge(f"gnn{g} attention{t} edge", edge_tokens)
        if max_tokens < initial_tokens:
            padding = torch.zeros(edge_tokens.shape[0], initial_tokens - max_tokens,
                                  edge_tokens.shape[2], device=edge_tokens.device)
            edge_tokens = torch.cat([edge_tokens, padding], dim=1)
        return node_tokens.squeeze(1), edge_tokens

    def _post_process(self, systems, atomic, sample_labels):
        """``PET.forward`` after ``predict``: per-system sum, scaler, additive models."""
        pet = self.pet
        outputs = {TARGET: ModelOutput(unit="eV", sample_kind="system")}
        predictions = pet._get_output_atomic_predictions(atomic, sample_labels, outputs, None)
        predictions = pet.scaler.apply_scales(systems, predictions, False, None, True, True)
        for additive in _children(pet.additive_models):
            wanted = {k: v for k, v in outputs.items() if k in additive.outputs}
            contributions = additive(systems, wanted, None)
            for key in contributions:
                blocks = []
                for block_key, block in predictions[key].items():
                    if contributions[key].keys.position(block_key) is not None:
                        other = contributions[key].block(block_key)
                        if not torch.equal(other.samples.values, block.samples.values):
                            raise MdsymError(f"model {self.name}: additive model samples differ")
                        block = TensorBlock(block.values + other.values.to(block.values.dtype),
                                            block.samples, block.components, block.properties)
                    blocks.append(block)
                predictions[key] = TensorMap(predictions[key].keys, blocks)
        return predictions[TARGET].block().values.reshape(-1)

    @staticmethod
    def _check_same_pairs(mask, n_systems):
        """Edge features are compared pair by pair across rotated copies: every copy
        must keep the same pairs in the same slots (one shared neighbour list)."""
        per_copy = mask.reshape(n_systems, -1, mask.shape[1])
        if not bool((per_copy == per_copy[:1]).all()):
            raise MdsymError("the rotated copies do not keep the same neighbour pairs: "
                             "a pair sits at the model's cutoff; measure another frame")

    # ------------------------------------------------------------------ the check

    def check_energy(self, systems: list, energy: torch.Tensor) -> float:
        """Largest relative difference between the layer path's energies and the
        model's own forward; raises MdsymError beyond float round-off."""
        requested = {TARGET: ModelOutput(unit="eV", sample_kind="system")}
        reference = self.pet(systems, requested, None)[TARGET].block().values.reshape(-1)
        scale = reference.abs().clamp_min(torch.finfo(reference.dtype).tiny)
        difference = float(((energy - reference).abs() / scale).max())
        tolerance = 100 * torch.finfo(reference.dtype).eps
        if not difference <= tolerance:
            raise MdsymError(
                f"model {self.name}: the layer path does not reproduce the model's energy "
                f"(relative difference {difference:.2g} > {tolerance:.2g}); its PET code differs "
                "from the metatrain 2026.4 code mdsym follows"
            )
        return difference


def _concatenate_structures(systems, options):
    """``metatrain.pet.modules.structures.concatenate_structures``: one batch of atoms
    and pairs (a TorchScript function of the file that Python cannot reach)."""
    positions, species, cells, pairs, sizes, counts = [], [], [], [], [], []
    for system in systems:
        pairs.append(system.get_neighbor_list(options).samples.values)
        positions.append(system.positions)
        species.append(system.types)
        cells.append(system.cell)
        sizes.append(len(system))
        counts.append(pairs[-1].shape[0])
    device = positions[0].device
    pairs = torch.cat(pairs)
    sizes_t = torch.tensor(sizes, device=device)
    offsets = torch.cumsum(sizes_t, 0) - sizes_t
    edge_offsets = torch.repeat_interleave(offsets, torch.tensor(counts, device=device)).to(pairs.dtype)
    system_indices = torch.repeat_interleave(torch.arange(len(systems), device=device), sizes_t)
    atom_indices = torch.arange(int(sizes_t.sum()), device=device) - torch.repeat_interleave(offsets, sizes_t)
    labels = Labels(["system", "atom"], torch.stack([system_indices, atom_indices], 1).to(torch.int32))
    return (torch.cat(positions), pairs[:, 0] + edge_offsets, pairs[:, 1] + edge_offsets,
            torch.cat(species), torch.stack(cells), pairs[:, 2:], system_indices, labels)
