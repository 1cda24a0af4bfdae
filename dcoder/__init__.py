"""dcoder: masked-diffusion code infilling for editors."""

__version__ = "0.2.0"
