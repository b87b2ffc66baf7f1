"""ImgTag storage service."""
