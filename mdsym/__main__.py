from mdsym.cli.main import main

main()
