"""REST route families; each router translates HTTP <-> one or more service RPCs."""
