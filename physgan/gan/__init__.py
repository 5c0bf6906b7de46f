"""GAN engine: losses, networks, training and sampling, shared by every physical system."""
