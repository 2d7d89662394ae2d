"""HTTP layer: one blueprint per module (each exposes ``bp``), problems, schemas."""
