"""`python -m myshift` is the `myshift` CLI."""

from myshift.cli.main import main

if __name__ == "__main__":
    main()
