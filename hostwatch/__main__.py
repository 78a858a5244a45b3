"""`python -m hostwatch` is the `hostwatch` command."""

from hostwatch.cli import main

if __name__ == "__main__":
    main()
