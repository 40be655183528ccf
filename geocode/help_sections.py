"""How ``lmr-geocode`` commands group their options in ``--help`` (see ``lmr.clihelp``)."""

from __future__ import annotations

BACKEND = ["backend", "geocoder_url", "user_agent", "geocoder_options", "geocoder_timeout"]
LIMITS = ["geocoder_min_delay", "geocoder_rate_file", "cache_path", "offline_fallback"]
CHOICE = ["region", "min_confidence", "fallback", "prior", "memory"]

RESOLVE_SECTIONS = {
    "What to resolve": ["mentions"],
    "Backend": BACKEND,
    "Rate limits, cache and outages": LIMITS,
    "Disambiguation": CHOICE,
    "Output": ["k", "as_json"],
    "Settings file": ["config"],
}

EVALUATE_SECTIONS = {
    "Backend": BACKEND,
    "Rate limits, cache and outages": LIMITS,
    "Disambiguation": [*CHOICE, "region_map", "order", "typed"],
    "Output": ["mrr", "as_json", "details", "report", "result_path"],
    "Settings file": ["config"],
}

LEARN_SECTIONS = {
    "What to keep": ["min_support"],
    "Output": ["out"],
}
