"""The bottom layer: errors, registry, the one parameter system, units, device, seeding."""
