"""`python -m datarch`: the same entry point as the `datarch` console script."""

from datarch.cli import main

if __name__ == "__main__":
    main()
