"""Settings of the optimization benchmark: Bulwark's, with the demo app's URLs in front."""
from config.settings import *  # noqa: F403

ROOT_URLCONF = "benchmarks.optimization_demo.urls"
