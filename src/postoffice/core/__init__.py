"""Pure value types shared by every layer: addresses, replies, errors, clocks."""
