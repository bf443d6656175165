"""Response models of the documented API, one module per route family."""
