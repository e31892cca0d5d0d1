"""Main-window areas (one module per sidebar entry); see base.py for the contract each one follows."""
