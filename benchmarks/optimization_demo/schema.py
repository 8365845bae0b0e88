"""Create and fill the demo tables once per database (they are not migrated: the app is not installed)."""
from __future__ import annotations

import random

from django.db import connection

from benchmarks.optimization_demo.models import MODELS, Customer, Order, Product, Setting

CUSTOMERS = 20_000
ORDERS = 30_000
PRODUCTS = 600
SMALL_PRODUCTS = 50


def ensure_schema(*, seed: int = 7) -> None:
    existing = set(connection.introspection.table_names())
    if all(model._meta.db_table in existing for model in MODELS) and Order.objects.exists():
        return
    with connection.schema_editor() as editor:
        for model in MODELS:
            if model._meta.db_table not in existing:
                editor.create_model(model)
    rng = random.Random(seed)
    cities = ["Lyon", "Oslo", "Porto", "Graz", "Turku", "Gent", "Split", "Brno"]
    Customer.objects.bulk_create(
        [Customer(name=f"customer {i} {rng.choice(cities)}", email=f"c{i}@example.com", city=rng.choice(cities))
         for i in range(CUSTOMERS)], batch_size=5000)
    ids = list(Customer.objects.values_list("pk", flat=True))
    Order.objects.bulk_create(
        [Order(customer_id=rng.choice(ids), code=f"C{i:08d}", reference=f"R{i:08d}", amount=rng.randint(1, 10**6),
               created=i) for i in range(ORDERS)], batch_size=5000)
    Product.objects.bulk_create([Product(name=f"product {i}", price=rng.randint(1, 999)) for i in range(PRODUCTS)])
    Setting.objects.bulk_create([Setting(key=k, value=v) for k, v in (("currency", "EUR"), ("vat", "20"))])
    with connection.cursor() as cursor:
        for model in MODELS:
            cursor.execute(f'ANALYZE "{model._meta.db_table}"')
