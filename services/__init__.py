"""The platform's services; each imports only `contracts` and `gongdi`, never another service."""
