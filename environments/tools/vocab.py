"""Small word lists for generated content (names, places, products), shipped in the package.

Why in code: tasks must regenerate bit for bit from a seed on any machine, offline; invented names also keep
a model from answering from memory instead of using the tools.
"""

from __future__ import annotations

FIRST_NAMES: tuple[str, ...] = (
    "Ada", "Bram", "Cleo", "Dario", "Edda", "Faro", "Greta", "Hugo", "Ines", "Jory", "Kasia", "Lumo", "Mara",
    "Nils", "Orla", "Pavo", "Quin", "Rhea", "Sami", "Tove", "Ulla", "Vero", "Wim", "Xena", "Yara", "Zeno",
    "Alba", "Bodo", "Cyra", "Dex", "Elin", "Fenn", "Gus", "Hana", "Ivo", "Juno",
)
LAST_NAMES: tuple[str, ...] = (
    "Quill", "Marlow", "Vance", "Okoro", "Brandt", "Castell", "Dunmore", "Ferris", "Galloway", "Hale", "Iverson",
    "Jarrow", "Kestrel", "Lindqvist", "Moreau", "Nakamura", "Ortega", "Pryce", "Rowan", "Sallow", "Thorne",
    "Underhill", "Voss", "Whitlock", "Yardley", "Zorin", "Abbott", "Blackwood", "Corvin", "Delacroix",
)
CITIES: tuple[str, ...] = (
    "Velmor", "Ostrava Bay", "Kelby", "Ardent", "Brisca", "Calloway", "Dunfell", "Eskar", "Fallowmere", "Grint",
    "Harrowgate", "Isel", "Jaskow", "Korrin", "Lumen", "Marrow", "Norvik", "Oakhaven", "Pellam", "Quarry Hill",
    "Rusk", "Selby Cross", "Tarn", "Umber", "Vesk", "Wexley", "Yelm", "Zandor",
)
COUNTRIES: tuple[str, ...] = (
    "Aldoria", "Brevonia", "Cestia", "Durmand", "Elvaria", "Fennick", "Galdora", "Hestria", "Istrel", "Jovania",
    "Kalvar", "Lorendi",
)
COMPANY_HEADS: tuple[str, ...] = (
    "Bright", "Iron", "North", "Silver", "Blue", "Red", "Granite", "Swift", "Clear", "Deep", "High", "Amber",
    "Cobalt", "Nimble", "Solid", "True",
)
COMPANY_TAILS: tuple[str, ...] = (
    "wave", "stone", "field", "works", "line", "gate", "forge", "path", "point", "bridge", "crest", "harbor",
)
COMPANY_KINDS: tuple[str, ...] = ("Logistics", "Labs", "Foods", "Textiles", "Robotics", "Energy", "Media", "Pharma")
PRODUCTS_BY_CATEGORY: dict[str, tuple[str, ...]] = {
    "tools": ("hammer", "wrench", "drill", "saw", "chisel", "pliers", "level"),
    "kitchen": ("kettle", "skillet", "whisk", "ladle", "colander", "grater", "teapot"),
    "garden": ("trowel", "rake", "hose", "shears", "planter", "sprinkler", "spade"),
    "office": ("stapler", "notebook", "binder", "lamp", "marker", "folder", "easel"),
    "outdoor": ("tent", "lantern", "compass", "canteen", "hammock", "backpack", "stove"),
    "audio": ("speaker", "headset", "amplifier", "turntable", "microphone", "mixer", "radio"),
}
ADJECTIVES: tuple[str, ...] = (
    "compact", "deluxe", "classic", "rugged", "silent", "pocket", "heavy", "smart", "basic", "pro", "mini", "grand",
)
HOBBIES: tuple[str, ...] = (
    "chess", "rowing", "pottery", "falconry", "archery", "sailing", "beekeeping", "fencing", "origami", "curling",
)
SERVICES: tuple[str, ...] = (
    "auth", "billing", "search", "gateway", "ledger", "mailer", "scheduler", "catalog", "inventory", "reports",
    "uploader", "notifier", "metrics", "profile",
)
LOG_MESSAGES: tuple[str, ...] = (
    "request served", "cache refreshed", "connection opened", "connection closed", "job queued", "job finished",
    "retrying upstream call", "config reloaded", "slow query detected", "token renewed", "user logged in",
    "disk usage checked",
)
ERROR_MESSAGES: tuple[str, ...] = (
    "upstream timeout", "database unavailable", "permission denied", "invalid payload", "out of memory",
    "certificate expired", "queue overflow",
)
KEYWORDS: tuple[str, ...] = (
    "zephyr", "quokka", "marmalade", "obsidian", "tundra", "lantern", "saffron", "meridian", "cobblestone", "nimbus",
)
