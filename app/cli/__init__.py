"""The command line: `inpaint-studio [PHOTO]` opens the editor; subcommands run headless."""
