"""The fault benchmark: how soon config takes effect after a control-plane part dies and returns."""
