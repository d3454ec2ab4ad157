"""Message structure and the headers postoffice adds (trace headers; later the part index, DSNs)."""
