"""nasforge: neural architecture search for your own data."""
