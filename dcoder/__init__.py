"""dcoder: masked-diffusion code infilling for editors."""

__version__ = "0.1.0"
