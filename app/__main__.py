"""Entry point: `python -m app` and the `inpaint-studio` console script."""

from app.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
