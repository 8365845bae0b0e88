"""Tables of the optimization demo: big enough that a missing index shows (ensure_schema creates them)."""
from __future__ import annotations

from django.db import models

APP_LABEL = "optimization_demo"


class Customer(models.Model):
    name = models.CharField(max_length=100)
    email = models.CharField(max_length=200)
    city = models.CharField(max_length=50)

    class Meta:
        app_label = APP_LABEL

    def __str__(self) -> str:
        return self.name


class Order(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="orders")
    code = models.CharField(max_length=32, db_index=True)
    reference = models.CharField(max_length=32)  # planted: filtered on, never indexed
    amount = models.IntegerField()  # planted: sorted on, never indexed
    created = models.IntegerField(db_index=True)

    class Meta:
        app_label = APP_LABEL

    def __str__(self) -> str:
        return self.code


class Product(models.Model):
    name = models.CharField(max_length=100)
    price = models.IntegerField()

    class Meta:
        app_label = APP_LABEL

    def __str__(self) -> str:
        return self.name


class Setting(models.Model):
    key = models.CharField(max_length=50, unique=True)
    value = models.CharField(max_length=200)

    class Meta:
        app_label = APP_LABEL

    def __str__(self) -> str:
        return self.key


MODELS = [Customer, Order, Product, Setting]
