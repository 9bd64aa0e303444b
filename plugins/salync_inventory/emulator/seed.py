"""The emulator's starting workspace, the same for the same seed and start time.

About a third of the products have variants (1-3 option types, at most 6 combinations); every
stock item has a level at both locations; 5 suppliers; 7 purchase orders, one or more in each
status (received ones left ``po_receipt`` adjustments in the history); 3 channels with listing
states. Every timestamp lies before the emulator's start, so anything the API changes sorts
after the seeded data. Contact details use reserved example domains and drama phone numbers.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal

from salync_inventory.emulator.data import StockItem, Workspace
from salync_inventory.emulator.models import (
    Adjustment,
    Channel,
    LineItem,
    Listing,
    Option,
    Product,
    PurchaseOrder,
    Supplier,
    Variant,
)

DAY_MS = 86_400_000
NOUNS = [
    ("LAMP", "Lamp"),
    ("MUG", "Mug"),
    ("TEE", "T-Shirt"),
    ("BAG", "Tote Bag"),
    ("CNDL", "Candle"),
    ("NOTE", "Notebook"),
    ("SOCK", "Socks"),
    ("POT", "Plant Pot"),
    ("SCRF", "Scarf"),
    ("BOWL", "Bowl"),
]
ADJECTIVES = ["Oak", "Linen", "Copper", "Indigo", "Sage", "Amber", "Slate", "Coral", "Walnut"]
OPTION_POOLS = {
    "Size": ["S", "M", "L", "XL"],
    "Colour": ["Red", "Blue", "Green", "Black"],
    "Material": ["Cotton", "Wool", "Linen"],
}
OPTION_SHAPES = [(2,), (3,), (4,), (2, 2), (2, 3), (3, 2), (2, 1, 1), (3, 2, 1)]
SUPPLIERS = [
    # company, contact, address, currency, MOQ, MOV
    ("Northwind Textiles Ltd", "Amira Shah", "Leeds LS1 4AB", "GBP", 10, "250.00"),
    ("Harbour Ceramics", "Tom Fielding", "Bristol BS1 6QA", "GBP", 25, None),
    ("Brightlane Candles", "Chloe Martin", "York YO1 7HH", "GBP", None, None),
    ("Copperfield Homeware", "Daniel Okafor", "Manchester M1 2AB", "GBP", 5, "100.00"),
    ("Papeterie Verte SARL", "Léa Dubois", "69002 Lyon, France", "EUR", 20, "150.00"),
]
PO_STATUSES_SEEDED = [
    "draft",
    "sent",
    "confirmed",
    "in_transit",
    "received",
    "received",
    "cancelled",
]
CHANNELS = [
    ("shopify", "Shopify store", "connected"),
    ("amazon", "Amazon UK", "connected"),
    ("ebay", "eBay UK", "disconnected"),
]
LISTING_ERRORS = [
    "Missing required attribute: brand",
    "Price is below the channel minimum",
    "Main image does not meet the size requirements",
]


def seed_workspace(ws: Workspace, *, products: int, seed: int, start_ms: int | None = None) -> None:
    """Fill an empty workspace, as it stood at ``start_ms`` (platform time; default: now)."""
    rng = random.Random(seed)
    start = int(ws.clock.time() * 1000) if start_ms is None else start_ms
    suppliers = [_supplier(ws, rng, index, start) for index in range(len(SUPPLIERS))]
    for index in range(products):
        _product(ws, rng, index, suppliers, start)
    items = list(ws.stock_items())
    if items:
        for status in PO_STATUSES_SEEDED:
            _purchase_order(ws, rng, status, suppliers, items, start)
    for kind, name, status in CHANNELS:
        _channel(ws, rng, kind, name, status, items, start)


def _past(rng: random.Random, start: int, max_days: int = 180) -> int:
    return start - rng.randint(DAY_MS, max_days * DAY_MS)


def _between(rng: random.Random, earlier: int, start: int) -> int:
    return rng.randint(earlier, start - 1)


def _supplier(ws: Workspace, rng: random.Random, index: int, start: int) -> Supplier:
    company, contact, address, currency, moq, mov = SUPPLIERS[index]
    slug = company.split()[0].lower()
    created = _past(rng, start, 400)
    supplier = Supplier(
        id=ws.new_id("sup"),
        company_name=company,
        created_ms=created,
        updated_ms=_between(rng, created, start),
        contact_name=contact,
        email=f"orders@{slug}.example.com",
        phone=f"+44 20 7946 0{rng.randint(100, 999)}",
        website=f"https://{slug}.example.com",
        address=f"{rng.randint(1, 99)} Mill Lane, {address}",
        notes=rng.choice([None, "Ships on pallets only", "Closed in August"]),
        lead_time_days=rng.randint(3, 30),
        moq=moq,
        mov=None if mov is None else Decimal(mov),
        payment_terms=rng.choice(["Net 30", "Net 60", "Payment on order"]),
        currency=currency,
    )
    ws.suppliers[supplier.id] = supplier
    return supplier


def _product(
    ws: Workspace, rng: random.Random, index: int, suppliers: list[Supplier], start: int
) -> None:
    code, noun = NOUNS[index % len(NOUNS)]
    created = _past(rng, start)
    cost = Decimal(rng.randint(200, 4000)) / 100
    supplier = rng.choice(suppliers)
    product = Product(
        id=ws.new_id("prd"),
        sku=f"{code}-{index + 1:04d}",
        name=f"{rng.choice(ADJECTIVES)} {noun}",
        created_ms=created,
        updated_ms=_between(rng, created, start),
        description=rng.choice([None, f"A {noun.lower()} from the autumn collection."]),
        barcode=_ean13(rng),
        cost_price=cost,
        sell_price=(cost * Decimal(rng.choice(["1.6", "2.0", "2.5"]))).quantize(Decimal("0.01")),
        supplier_id=supplier.id,
        supplier_reference=f"{supplier.company_name[:3].upper()}-{rng.randint(1000, 9999)}",
        low_stock_threshold=rng.choice([None, 5, 10, 20]),
    )
    ws.products[product.id] = product
    ws.sku_index[product.sku] = product.id
    if index % 3 == 2:
        _variants(ws, rng, product)
        items: list[StockItem] = [ws.variants[v] for v in product.variant_ids]
    else:
        items = [product]
    for item in items:
        _levels(ws, rng, item.id, product.updated_ms)


def _variants(ws: Workspace, rng: random.Random, product: Product) -> None:
    shape = rng.choice(OPTION_SHAPES)
    names = rng.sample(sorted(OPTION_POOLS), len(shape))
    product.options = [
        Option(name, OPTION_POOLS[name][:count]) for name, count in zip(names, shape, strict=True)
    ]
    combinations: list[dict[str, str]] = [{}]
    for option in product.options:
        combinations = [
            {**combo, option.name: value} for combo in combinations for value in option.values
        ]
    for combo in combinations:
        sku = "-".join([product.sku, *combo.values()]).upper()
        variant = Variant(
            ws.new_id("var"), product.id, sku, combo, product.cost_price, product.sell_price
        )
        ws.variants[variant.id] = variant
        ws.sku_index[sku] = variant.id
        product.variant_ids.append(variant.id)


def _levels(ws: Workspace, rng: random.Random, item_id: str, updated: int) -> None:
    main = 0 if rng.random() < 0.15 else rng.randint(1, 120)
    backroom = rng.randint(1, 40) if rng.random() < 0.25 else 0
    ws.set_level(item_id, "loc_main", main, updated)
    ws.set_level(item_id, "loc_backroom", backroom, updated)


def _ean13(rng: random.Random) -> str:
    digits = [5, 0] + [rng.randint(0, 9) for _ in range(10)]
    check = (10 - sum(d * (3 if i % 2 else 1) for i, d in enumerate(digits)) % 10) % 10
    return "".join(map(str, digits)) + str(check)


def _purchase_order(
    ws: Workspace,
    rng: random.Random,
    status: str,
    suppliers: list[Supplier],
    items: list[StockItem],
    start: int,
) -> None:
    supplier = rng.choice(suppliers)
    own = [i for i in items if ws.product_of(i.id).supplier_id == supplier.id] or items
    created = _past(rng, start, 60)
    lines = [
        LineItem(
            item.id,
            item.sku,
            rng.choice([5, 10, 20, 50]),
            item.cost_price or Decimal(0),
            f"REF-{rng.randint(100, 999)}",
        )
        for item in rng.sample(own, min(len(own), rng.randint(1, 3)))
    ]
    updated = _between(rng, created, start)
    expected = datetime.fromtimestamp((created + 14 * DAY_MS) / 1000, UTC).date().isoformat()
    received = updated if status == "received" else None
    po = ws.add_purchase_order(
        supplier,
        status,
        lines,
        created_ms=created,
        updated_ms=updated,
        expected=expected,
        received_ms=received,
    )
    if status == "received":
        _receipt_history(ws, po, updated)


def _receipt_history(ws: Workspace, po: PurchaseOrder, received: int) -> None:
    """The adjustments a past receipt left; the seeded levels already include them."""
    day = datetime.fromtimestamp(received / 1000, UTC).date().isoformat()
    for line in po.line_items:
        adjustment = Adjustment(
            ws.new_id("adj"),
            line.item_id,
            line.sku,
            "po_receipt",
            line.quantity,
            "increase",
            "loc_main",
            None,
            None,
            po.number,
            day,
            received,
        )
        ws.adjustments[adjustment.id] = adjustment


def _channel(
    ws: Workspace,
    rng: random.Random,
    kind: str,
    name: str,
    status: str,
    items: list[StockItem],
    start: int,
) -> None:
    channel = Channel(ws.new_id("ch"), kind, name, status, _past(rng, start, 30))
    ws.channels[channel.id] = channel
    for item in items:
        if rng.random() < 0.6:
            state = rng.choices(["active", "inactive", "pending", "error"], [75, 10, 8, 7])[0]
            message = rng.choice(LISTING_ERRORS) if state == "error" else None
            updated = _past(rng, start, 30)
            ws.listings[channel.id, item.id] = Listing(channel.id, item.id, state, message, updated)
