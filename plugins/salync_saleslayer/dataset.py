"""A deterministic Sales Layer catalog: categories, products and variants from one seed.

The same ``(products, seed, locales, now)`` always gives the same catalog. Records are plain
``dict``s shaped like the API 2.0 answers; every field is present (``None``, ``{}`` or ``[]``
when empty). Localized fields are ``{culture: text}`` maps.

Some localized maps (materials, descriptions) are shared between records to keep a 100k catalog
small in memory, so code that edits a record must replace a map, never mutate it in place.

Two profiles: ``standard`` (the default, light records) and ``heavy``, a catalog shaped like a
real fashion account's (issue 10): each product also carries the custom attributes of
:data:`HEAVY_PRODUCT_FIELDS` (strings, numbers, integers, lists, a date and localized texts),
and its description is a long text of its own in every locale (several hundred characters,
never shared); each variant carries a stock count. The ``standard`` catalog for a seed is the
same whatever profiles exist: the heavy draws come from a second generator.
"""

from __future__ import annotations

import gc
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

Record = dict[str, Any]
YEAR_SECONDS = 365 * 86400

# Parallel word lists: index i is the same word in every language.
_ADJECTIVES = {
    "en": ["Classic", "Urban", "Vintage", "Light", "Warm", "Elegant", "Sporty", "Essential"],
    "es": ["clásico", "urbano", "vintage", "ligero", "cálido", "elegante", "deportivo", "básico"],
    "fr": ["classique", "urbain", "vintage", "léger", "chaud", "élégant", "sportif", "essentiel"],
    "de": ["Klassischer", "Urbaner", "Vintage", "Leichter", "Warmer", "Eleganter", "Sportlicher",
           "Schlichter"],
    "it": ["classico", "urbano", "vintage", "leggero", "caldo", "elegante", "sportivo",
           "essenziale"],
    "pt": ["clássico", "urbano", "vintage", "leve", "quente", "elegante", "desportivo", "básico"],
}  # fmt: skip
_NOUNS = {
    "en": ["Coat", "Jacket", "Shirt", "Sneaker", "Boot", "Scarf", "Bag", "Sweater", "Dress",
           "Backpack"],
    "es": ["Abrigo", "Chaqueta", "Camisa", "Zapatilla", "Bota", "Bufanda", "Bolso", "Jersey",
           "Vestido", "Mochila"],
    "fr": ["Manteau", "Veste", "Chemise", "Basket", "Botte", "Écharpe", "Sac", "Pull", "Robe",
           "Sac à dos"],
    "de": ["Mantel", "Jacke", "Hemd", "Sneaker", "Stiefel", "Schal", "Tasche", "Pullover", "Kleid",
           "Rucksack"],
    "it": ["Cappotto", "Giacca", "Camicia", "Sneaker", "Stivale", "Sciarpa", "Borsa", "Maglione",
           "Vestito", "Zaino"],
    "pt": ["Casaco", "Jaqueta", "Camisa", "Ténis", "Bota", "Cachecol", "Bolsa", "Camisola",
           "Vestido", "Mochila"],
}  # fmt: skip
_MATERIALS = {
    "en": ["wool", "cotton", "linen", "leather", "denim", "silk", "cashmere", "recycled polyester"],
    "es": ["lana", "algodón", "lino", "piel", "denim", "seda", "cachemira", "poliéster reciclado"],
    "fr": ["laine", "coton", "lin", "cuir", "denim", "soie", "cachemire", "polyester recyclé"],
    "de": ["Wolle", "Baumwolle", "Leinen", "Leder", "Denim", "Seide", "Kaschmir",
           "recyceltes Polyester"],
    "it": ["lana", "cotone", "lino", "pelle", "denim", "seta", "cashmere", "poliestere riciclato"],
    "pt": ["lã", "algodão", "linho", "pele", "ganga", "seda", "caxemira", "poliéster reciclado"],
}  # fmt: skip
_DEPARTMENTS = {
    "en": ["Women", "Men", "Kids", "Shoes", "Accessories", "Outdoor", "Home", "Sport"],
    "es": ["Mujer", "Hombre", "Niños", "Calzado", "Accesorios", "Exterior", "Hogar", "Deporte"],
    "fr": ["Femme", "Homme", "Enfants", "Chaussures", "Accessoires", "Plein air", "Maison",
           "Sport"],
    "de": ["Damen", "Herren", "Kinder", "Schuhe", "Accessoires", "Outdoor", "Wohnen", "Sport"],
    "it": ["Donna", "Uomo", "Bambini", "Scarpe", "Accessori", "Outdoor", "Casa", "Sport"],
    "pt": ["Mulher", "Homem", "Criança", "Calçado", "Acessórios", "Exterior", "Casa", "Desporto"],
}  # fmt: skip
# Romance languages put the adjective after the noun.
_NOUN_FIRST = frozenset({"es", "fr", "it", "pt"})
_MADE_OF = {
    "en": "{title}, made of {material}.",
    "es": "{title}, fabricado en {material}.",
    "fr": "{title}, fabriqué en {material}.",
    "de": "{title} aus {material}.",
    "it": "{title}, realizzato in {material}.",
    "pt": "{title}, fabricado em {material}.",
}
_CATEGORY_DESCRIPTION = {
    "en": "Everything in {title}.",
    "es": "Todo en {title}.",
    "fr": "Tout dans {title}.",
    "de": "Alles in {title}.",
    "it": "Tutto in {title}.",
    "pt": "Tudo em {title}.",
}

BRANDS = ("Norda", "Cala", "Ventisca", "Oreo Lane", "Brisa", "Montaña", "Kestrel", "Alba")
PRODUCT_TAGS = ("new", "sale", "eco", "bestseller", "limited", "outlet")
CATEGORY_TAGS = ("featured", "seasonal", "new", "outlet")
SIZES = ("XS", "S", "M", "L", "XL", "36", "38", "40", "42", "44", "U")
COLORS = ("black", "white", "navy", "red", "green", "beige", "grey", "camel", "blue")
VARIANT_TAGS = ("", "new", "bestseller", "limited")


PROFILES = ("standard", "heavy")
HEAVY_PRODUCT_FIELDS = {
    "prod_season": "string",
    "prod_origin_country": "string",
    "prod_warranty_months": "integer",
    "prod_eco_score": "number",
    "prod_features": "string list",
    "prod_release_date": "date-time",
    "prod_care": "localized",
    "prod_seo_title": "localized",
}
"""The custom attributes of a ``heavy`` product and their types."""
HEAVY_VARIANT_FIELDS = {"frmt_stock": "integer"}
SEASONS = ("SS25", "AW25", "SS26", "AW26", "permanent")
COUNTRIES = ("ES", "PT", "IT", "TR", "MA", "BD", "VN", "CN")
FEATURES = (
    "water-repellent", "breathable", "machine-washable", "hand-made", "organic", "vegan",
    "reinforced seams", "hidden pocket", "adjustable", "reflective details", "lined",
)  # fmt: skip
_CARE = {
    "en": ["Machine wash at 30 degrees.", "Hand wash only.", "Dry clean only.",
           "Wipe clean with a damp cloth."],
    "es": ["Lavar a máquina a 30 grados.", "Lavar solo a mano.", "Solo limpieza en seco.",
           "Limpiar con un paño húmedo."],
}  # fmt: skip
# Sentences of a long description, parallel across languages; {title}, {material},
# {weight}, {feature}, {number} and {season} are filled in per product.
_PARAGRAPHS = {
    "en": [
        "The {title} is cut from carefully selected {material} and finished by hand in our "
        "partner workshop, so no two pieces are exactly alike.",
        "It weighs only {weight} kg, which makes it an easy companion for travel, commuting "
        "and long weekends away from the city.",
        "Designers added {feature} details after testing prototype number {number} through a "
        "full {season} season with customers in five countries.",
        "Pair it with the rest of the collection or wear it on its own: the neutral palette "
        "and clean lines work from the office to the evening.",
        "Every order ships in recycled packaging, and the {material} is traceable from the "
        "mill to our warehouse through the code printed on the inside label.",
        "Sizes run true to fit; if you are between two sizes, our fit guide recommends the "
        "larger one for a relaxed look and the smaller for a tailored one.",
    ],
    "es": [
        "{title} está confeccionado en {material} cuidadosamente seleccionado y terminado a "
        "mano en nuestro taller asociado, así que no hay dos piezas exactamente iguales.",
        "Pesa solo {weight} kg, lo que lo convierte en un compañero cómodo para viajar, ir "
        "al trabajo y pasar fines de semana largos lejos de la ciudad.",
        "El equipo de diseño añadió detalles {feature} después de probar el prototipo número "
        "{number} durante toda una temporada {season} con clientes de cinco países.",
        "Combínalo con el resto de la colección o llévalo solo: la paleta neutra y las "
        "líneas limpias funcionan desde la oficina hasta la noche.",
        "Cada pedido se envía en embalaje reciclado, y el {material} es trazable desde la "
        "hilatura hasta nuestro almacén con el código impreso en la etiqueta interior.",
        "Las tallas son fieles; si dudas entre dos tallas, nuestra guía recomienda la mayor "
        "para un aire relajado y la menor para un corte más ajustado.",
    ],
}  # fmt: skip


@dataclass
class Catalog:
    """Records by id, each dict in ascending id order."""

    categories: dict[int, Record] = field(default_factory=dict)
    products: dict[int, Record] = field(default_factory=dict)
    variants: dict[int, Record] = field(default_factory=dict)


def format_timestamp(moment: float | datetime) -> str:
    """UTC ISO 8601 at second resolution with ``Z``: ``2026-03-01T10:00:00Z``."""
    seconds = moment.timestamp() if isinstance(moment, datetime) else moment
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(seconds)))


def _words(table: dict[str, list[str]], locale: str, index: int) -> str:
    """A word in ``locale``; locales without a word list get the English word tagged."""
    words = table.get(locale)
    return words[index] if words is not None else f"{table['en'][index]} [{locale}]"


def _title_text(locale: str, adjective: int, noun: int, suffix: str) -> str:
    adj, name = _words(_ADJECTIVES, locale, adjective), _words(_NOUNS, locale, noun)
    words = f"{name} {adj}" if locale in _NOUN_FIRST else f"{adj} {name}"
    return f"{words} {suffix}"


def product_title(
    rng: random.Random, locales: Sequence[str], number: int, revision: int = 0
) -> dict[str, str]:
    """A product title in every locale (``Classic Coat 42``); a revision makes a new text for
    the same product (``Urban Bag 42 (rev. 2)``)."""
    adjective, noun = rng.randrange(len(_ADJECTIVES["en"])), rng.randrange(len(_NOUNS["en"]))
    suffix = f"{number} (rev. {revision})" if revision else str(number)
    return {locale: _title_text(locale, adjective, noun, suffix) for locale in locales}


class _Generator:
    """Builds one catalog; holds the RNG and the caches of shared localized maps.

    Draws use ``random()`` arithmetic rather than ``randrange``/``choice``: several times
    faster, which matters at 100k products, and just as deterministic.
    """

    def __init__(self, seed: int, locales: Sequence[str], now: float) -> None:
        self.rng = random.Random(seed)
        self.extra = random.Random(seed + 7919).random  # the heavy profile's draws
        self.random = self.rng.random
        self.locales = tuple(locales)
        self.now = int(now)
        self.materials = [
            {locale: _words(_MATERIALS, locale, index) for locale in self.locales}
            for index in range(len(_MATERIALS["en"]))
        ]
        self.title_words = {
            (adjective, noun): {
                locale: _title_text(locale, adjective, noun, "").rstrip() for locale in self.locales
            }
            for adjective in range(len(_ADJECTIVES["en"]))
            for noun in range(len(_NOUNS["en"]))
        }
        self.descriptions: dict[tuple[int, int, int], dict[str, str]] = {}

    def below(self, n: int) -> int:
        """A uniform integer in ``[0, n)``."""
        return int(self.random() * n)

    def pick(self, items: Sequence[Any]) -> Any:
        return items[int(self.random() * len(items))]

    def some(self, items: Sequence[str], most: int) -> list[str]:
        """Up to ``most`` distinct items."""
        return self.rng.sample(items, self.below(most + 1)) if self.random() < 0.6 else []

    def timestamps(self) -> tuple[str, str]:
        """A creation and a later modification time, both in the year before ``now``."""
        created = self.now - 1 - self.below(YEAR_SECONDS - 1)
        modified = created + self.below(self.now - created)
        return format_timestamp(created), format_timestamp(modified)

    def status(self) -> str:
        roll = self.random()
        return "V" if roll < 0.85 else "I" if roll < 0.92 else "D" if roll < 0.97 else "R"

    def categories(self, count: int) -> dict[int, Record]:
        """A two-level tree: about a tenth roots, the rest children of a random root."""
        roots = max(2, count // 10)
        records: dict[int, Record] = {}
        for cat_id in range(1, count + 1):
            parent = None if cat_id <= roots else records[1 + self.below(roots)]
            department = self.below(len(_DEPARTMENTS["en"]))
            title = {
                locale: f"{_words(_DEPARTMENTS, locale, department)} {cat_id}"
                for locale in self.locales
            }
            created, modified = self.timestamps()
            records[cat_id] = {
                "cat_id": cat_id,
                "cat_ref": f"CAT-{cat_id:05d}",
                "cat_title": title,
                "cat_description": {
                    locale: _CATEGORY_DESCRIPTION.get(locale, "{title}").format(title=text)
                    for locale, text in title.items()
                },
                "cat_parent_id": None if parent is None else parent["cat_id"],
                "cat_parent_ref": None if parent is None else parent["cat_ref"],
                "cat_stat": "V",
                "cat_tags": self.some(CATEGORY_TAGS, 2),
                "cat_creation": created,
                "cat_modify": modified,
            }
        return records

    def description(self, adjective: int, noun: int, material: int) -> dict[str, str]:
        key = (adjective, noun, material)
        cached = self.descriptions.get(key)
        if cached is None:
            cached = self.descriptions[key] = {
                locale: _MADE_OF.get(locale, "{title} ({material})").format(
                    title=self.title_words[adjective, noun][locale],
                    material=self.materials[material][locale],
                )
                for locale in self.locales
            }
        return cached

    def product(self, prod_id: int, leaves: Sequence[Record]) -> Record:
        ref = f"PRD-{prod_id:06d}"
        adjective, noun = self.below(len(_ADJECTIVES["en"])), self.below(len(_NOUNS["en"]))
        material = self.below(len(self.materials))
        categories = [self.pick(leaves)]
        if self.random() < 0.3:
            second = self.pick(leaves)
            if second is not categories[0]:
                categories.append(second)
        created, modified = self.timestamps()
        words = self.title_words[adjective, noun]
        return {
            "prod_id": prod_id,
            "prod_ref": ref,
            "prod_title": {locale: f"{text} {prod_id}" for locale, text in words.items()},
            "prod_description": self.description(adjective, noun, material),
            "prod_stat": self.status(),
            "cat_id": [category["cat_id"] for category in categories],
            "cat_ref": [category["cat_ref"] for category in categories],
            "prod_image": [f"{ref}-{index}.jpg" for index in range(1, self.below(3) + 2)],
            "prod_creation": created,
            "prod_modify": modified,
            "prod_brand": self.pick(BRANDS),
            "prod_material": self.materials[material],
            "prod_weight": round(0.1 + self.random() * 24.9, 2),
            "prod_tags": self.some(PRODUCT_TAGS, 3),
        }

    def variant(self, frmt_id: int, product: Record, position: int) -> Record:
        ref = f"{product['prod_ref']}-{position}"
        created, modified = self.timestamps()
        return {
            "frmt_id": frmt_id,
            "frmt_ref": ref,
            "prod_id": product["prod_id"],
            "prod_ref": product["prod_ref"],
            "frmt_stat": "V" if self.random() < 0.9 else "I",
            "frmt_size": self.pick(SIZES),
            "frmt_color": self.pick(COLORS),
            "frmt_price": round(5.0 + self.random() * 495.0, 2),
            "frmt_ean": ean13(self.below(10**12)),
            "frmt_tags": self.pick(VARIANT_TAGS),
            "frmt_link": f"https://shop.example.com/products/{ref.lower()}",
            "frmt_creation": created,
            "frmt_modify": modified,
        }

    def heavy_product(self, product: Record) -> None:
        """Add the heavy profile's custom attributes and a long description of its own."""
        draw = self.extra
        title, weight = product["prod_title"], product["prod_weight"]
        number = product["prod_id"] * 7 + int(draw() * 1000)
        season = SEASONS[int(draw() * len(SEASONS))]
        features = [FEATURES[int(draw() * len(FEATURES))] for _ in range(int(draw() * 4))]
        feature = features[0] if features else "practical"
        material = product["prod_material"]
        chosen = sorted(range(len(_PARAGRAPHS["en"])), key=lambda _: draw())[: 3 + int(draw() * 3)]
        care = int(draw() * len(_CARE["en"]))
        release = self.now - int(draw() * YEAR_SECONDS)
        product["prod_description"] = {
            locale: " ".join(
                _PARAGRAPHS.get(locale, _PARAGRAPHS["en"])[index].format(
                    title=title[locale],
                    material=material[locale],
                    weight=weight,
                    feature=feature,
                    number=number,
                    season=season,
                )
                for index in chosen
            )
            for locale in self.locales
        }
        product["prod_season"] = season
        product["prod_origin_country"] = COUNTRIES[int(draw() * len(COUNTRIES))]
        product["prod_warranty_months"] = (6, 12, 24, 36)[int(draw() * 4)]
        product["prod_eco_score"] = round(draw() * 10, 1) if draw() < 0.8 else None
        product["prod_features"] = features
        product["prod_release_date"] = format_timestamp(release)
        product["prod_care"] = {
            locale: _CARE.get(locale, _CARE["en"])[care] for locale in self.locales
        }
        product["prod_seo_title"] = {
            locale: f"{title[locale]} | {product['prod_brand']} {season}" for locale in self.locales
        }

    def heavy_variant(self, variant: Record) -> None:
        variant["frmt_stock"] = int(self.extra() * 200)


def ean13(number: int) -> str:
    """A 13-digit EAN: 12 digits of ``number`` and their check digit."""
    digits = f"{number:012d}"
    total = sum(map(int, digits[::2])) + 3 * sum(map(int, digits[1::2]))
    return digits + str(-total % 10)


def generate_catalog(
    *,
    products: int,
    seed: int,
    locales: Sequence[str],
    now: float | datetime,
    profile: str = "standard",
) -> Catalog:
    """``max(5, products // 50)`` categories, ``products`` products and 0-3 variants each
    (1.5 on average), all timestamped in the 365 days before ``now``; ``profile`` is one of
    :data:`PROFILES`."""
    if profile not in PROFILES:
        raise ValueError(f"unknown catalog profile {profile!r}; use one of {', '.join(PROFILES)}")
    heavy = profile == "heavy"
    moment = now.timestamp() if isinstance(now, datetime) else now
    generator = _Generator(seed, locales, moment)
    # Millions of new containers would trigger many useless cyclic-GC passes: none of them
    # can be garbage yet.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        catalog = Catalog(categories=generator.categories(max(5, products // 50)))
        leaves = [c for c in catalog.categories.values() if c["cat_parent_id"] is not None]
        frmt_id = 0
        for prod_id in range(1, products + 1):
            product = catalog.products[prod_id] = generator.product(prod_id, leaves)
            if heavy:
                generator.heavy_product(product)
            for position in range(1, generator.below(4) + 1):
                frmt_id += 1
                variant = catalog.variants[frmt_id] = generator.variant(frmt_id, product, position)
                if heavy:
                    generator.heavy_variant(variant)
    finally:
        if gc_was_enabled:
            gc.enable()
    return catalog
