"""ImgTag service kit: the infrastructure every service shares, and no business logic."""
