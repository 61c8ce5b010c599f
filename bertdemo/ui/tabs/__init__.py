"""One module per tab: each builds its own ``gr.Blocks`` (rendered into the app) and holds its callbacks."""
