"""`envgym/ToolUse-API-v0`: a stateful mock shop API (products, stock, coupons, orders) with rules; the task
needs several calls in the right order and the final state is checked, plus the id of the placed order.

Rules the agent must respect: only draft orders can change; checkout needs stock for every item (restock up
to each product's capacity first); a coupon needs its minimum subtotal and, for category coupons, an item of
that category. Difficulty adds items, hides SKUs (list the catalogue first), makes stock short, and asks for
the best coupon instead of naming it. The oracle is a planner over the live state, so it also recovers from
states other agents left behind.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from envgym.actions import Tool
from envgym.core import Feedback, StepOutcome
from envgym.environments.tools.answers import Expected, SubmitAnswer
from envgym.environments.tools.base import ToolParams, ToolTask, ToolTaskEnv, lerp_int
from envgym.environments.tools.vocab import ADJECTIVES, PRODUCTS_BY_CATEGORY, full_names


class ListProducts(Tool):
    """List the catalogue: sku, name, category, price, stock and restock capacity."""

    name: ClassVar[str] = "list_products"
    category: str | None = Field(default=None, description="only this category (optional)")


class ListCoupons(Tool):
    """List coupon codes and their rules."""

    name: ClassVar[str] = "list_coupons"


class CreateOrder(Tool):
    """Create an empty draft order for a customer; returns its id."""

    name: ClassVar[str] = "create_order"
    customer: str = Field(description="the customer's full name")


class AddItem(Tool):
    """Add `quantity` units of a product to a draft order (adds to any quantity already there)."""

    name: ClassVar[str] = "add_item"
    order_id: str
    sku: str
    quantity: int = Field(ge=1, le=1000)


class RemoveItem(Tool):
    """Remove a product line from a draft order."""

    name: ClassVar[str] = "remove_item"
    order_id: str
    sku: str


class ApplyCoupon(Tool):
    """Apply a coupon to a draft order (replaces any coupon already applied)."""

    name: ClassVar[str] = "apply_coupon"
    order_id: str
    code: str


class Restock(Tool):
    """Add units to a product's stock (stock may not exceed the product's capacity)."""

    name: ClassVar[str] = "restock"
    sku: str
    quantity: int = Field(ge=1, le=1000)


class Checkout(Tool):
    """Place a draft order: checks stock and coupon rules, then takes the items from stock."""

    name: ClassVar[str] = "checkout"
    order_id: str


class CancelOrder(Tool):
    """Cancel a draft or placed order (a placed order's items go back to stock)."""

    name: ClassVar[str] = "cancel_order"
    order_id: str


class GetOrder(Tool):
    """Show an order: customer, items, coupon, status and total."""

    name: ClassVar[str] = "get_order"
    order_id: str


class ApiParams(ToolParams):
    items: int = Field(default=2, ge=1, le=6, description="product lines the customer wants")
    products: int = Field(default=10, ge=6, le=40)
    show_skus: bool = Field(default=True, description="the task names SKUs (else list the catalogue first)")
    short_stock: int = Field(default=0, ge=0, le=6, description="wanted products whose stock is too low")
    coupon: str = Field(default="given", pattern="^(none|given|best)$", description="none, given code, or best")
    candidates: int = Field(default=5, ge=1, le=20)


@dataclass
class Product:
    sku: str
    name: str
    category: str
    price: float
    stock: int
    capacity: int


@dataclass
class Coupon:
    code: str
    percent: int
    min_subtotal: float
    category: str | None


@dataclass
class Order:
    id: str
    customer: str
    items: dict[str, int] = field(default_factory=dict)
    coupon: str | None = None
    status: str = "draft"


@dataclass
class Shop:
    products: dict[str, Product]
    coupons: dict[str, Coupon]
    customers: list[str]
    orders: dict[str, Order] = field(default_factory=dict)
    next_id: int = 1001
    listed_products: bool = False
    listed_coupons: bool = False


@dataclass
class Goal:
    customer: str
    items: dict[str, int]
    coupon: str | None


class RuleError(Exception):
    """A call the shop refuses; the message says which rule."""


def subtotal(shop: Shop, items: dict[str, int]) -> float:
    return round(sum(shop.products[s].price * q for s, q in items.items()), 2)


def discount(shop: Shop, items: dict[str, int], code: str | None) -> float:
    if code is None:
        return 0.0
    c = shop.coupons[code]
    base = sum(shop.products[s].price * q for s, q in items.items() if c.category in (None, shop.products[s].category))
    return round(base * c.percent / 100, 2)


def coupon_problem(shop: Shop, items: dict[str, int], code: str) -> str | None:
    c = shop.coupons[code]
    if subtotal(shop, items) < c.min_subtotal:
        return f"coupon {code} needs a subtotal of at least {c.min_subtotal:.2f}"
    if c.category and not any(shop.products[s].category == c.category for s in items):
        return f"coupon {code} needs an item from category {c.category!r}"
    return None


def _order(shop: Shop, order_id: str, draft: bool = False) -> Order:
    o = shop.orders.get(order_id.strip())
    if o is None:
        raise RuleError(f"no order {order_id[:40]!r}; create_order returns ids like O-1001")
    if draft and o.status != "draft":
        raise RuleError(f"order {o.id} is {o.status}; only draft orders can change")
    return o


def _product(shop: Shop, sku: str) -> Product:
    p = shop.products.get(sku.strip().upper())
    if p is None:
        raise RuleError(f"no product with sku {sku[:40]!r}; see list_products")
    return p


def _list_products(shop: Shop, call: ListProducts) -> str:
    shop.listed_products = True
    rows = [p for p in shop.products.values() if call.category in (None, p.category)]
    if not rows:
        raise RuleError(f"no products in category {call.category!r}")
    lines = ["sku | name | category | price | stock | capacity"]
    lines += [f"{p.sku} | {p.name} | {p.category} | {p.price:.2f} | {p.stock} | {p.capacity}" for p in rows]
    return "\n".join(lines)


def _list_coupons(shop: Shop, call: ListCoupons) -> str:
    shop.listed_coupons = True
    lines = []
    for c in shop.coupons.values():
        scope = f"on '{c.category}' items" if c.category else "on the whole order"
        lines.append(f"{c.code}: {c.percent}% off {scope}; needs subtotal >= {c.min_subtotal:.2f}")
    return "\n".join(lines)


def _create_order(shop: Shop, call: CreateOrder) -> str:
    name = " ".join(call.customer.split())
    match = [c for c in shop.customers if c.casefold() == name.casefold()]
    if not match:
        raise RuleError(f"unknown customer {call.customer[:40]!r}")
    oid = f"O-{shop.next_id}"
    shop.next_id += 1
    shop.orders[oid] = Order(oid, match[0])
    return f"created draft order {oid} for {match[0]}"


def _add_item(shop: Shop, call: AddItem) -> str:
    o, p = _order(shop, call.order_id, draft=True), _product(shop, call.sku)
    o.items[p.sku] = o.items.get(p.sku, 0) + call.quantity
    return f"order {o.id}: {p.sku} x {o.items[p.sku]}"


def _remove_item(shop: Shop, call: RemoveItem) -> str:
    o, p = _order(shop, call.order_id, draft=True), _product(shop, call.sku)
    if p.sku not in o.items:
        raise RuleError(f"order {o.id} has no {p.sku}")
    del o.items[p.sku]
    return f"order {o.id}: removed {p.sku}"


def _apply_coupon(shop: Shop, call: ApplyCoupon) -> str:
    o = _order(shop, call.order_id, draft=True)
    code = call.code.strip().upper()
    if code not in shop.coupons:
        raise RuleError(f"no coupon {call.code[:40]!r}; see list_coupons")
    problem = coupon_problem(shop, o.items, code)
    if problem:
        raise RuleError(problem)
    o.coupon = code
    return f"order {o.id}: coupon {code} applied, discount {discount(shop, o.items, code):.2f}"


def _restock(shop: Shop, call: Restock) -> str:
    p = _product(shop, call.sku)
    if p.stock + call.quantity > p.capacity:
        raise RuleError(
            f"{p.sku} has stock {p.stock} and capacity {p.capacity}: restock at most {p.capacity - p.stock}"
        )
    p.stock += call.quantity
    return f"{p.sku} stock is now {p.stock}"


def _checkout(shop: Shop, call: Checkout) -> str:
    o = _order(shop, call.order_id, draft=True)
    if not o.items:
        raise RuleError(f"order {o.id} is empty")
    for sku, qty in o.items.items():
        if shop.products[sku].stock < qty:
            raise RuleError(f"not enough {sku} in stock ({shop.products[sku].stock} < {qty}); restock first")
    if o.coupon and (problem := coupon_problem(shop, o.items, o.coupon)):
        raise RuleError(problem)
    for sku, qty in o.items.items():
        shop.products[sku].stock -= qty
    o.status = "placed"
    total = subtotal(shop, o.items) - discount(shop, o.items, o.coupon)
    return f"order {o.id} placed; total {total:.2f}"


def _cancel_order(shop: Shop, call: CancelOrder) -> str:
    o = _order(shop, call.order_id)
    if o.status == "cancelled":
        raise RuleError(f"order {o.id} is already cancelled")
    if o.status == "placed":
        for sku, qty in o.items.items():
            shop.products[sku].stock += qty
    o.status = "cancelled"
    return f"order {o.id} cancelled"


def _get_order(shop: Shop, call: GetOrder) -> str:
    o = _order(shop, call.order_id)
    items = ", ".join(f"{s} x {q}" for s, q in o.items.items()) or "(no items)"
    total = subtotal(shop, o.items) - discount(shop, o.items, o.coupon)
    return f"order {o.id}: customer {o.customer}; {items}; coupon {o.coupon or 'none'}; status {o.status}; total {total:.2f}"


# tool name -> its rules: every call of this API, one function each
_RULES: dict[str, Callable[[Shop, Any], str]] = {
    ListProducts.name: _list_products,
    ListCoupons.name: _list_coupons,
    CreateOrder.name: _create_order,
    AddItem.name: _add_item,
    RemoveItem.name: _remove_item,
    ApplyCoupon.name: _apply_coupon,
    Restock.name: _restock,
    Checkout.name: _checkout,
    CancelOrder.name: _cancel_order,
    GetOrder.name: _get_order,
}


def execute(shop: Shop, call: Tool) -> str:
    """Apply one call to the shop (mutating it) and return the response text; RuleError if refused."""
    return _RULES[call.name](shop, call)


def plan(shop: Shop, goal: Goal, need_listing: bool, need_coupons: bool) -> Tool:
    """The next call of a correct plan from this state (the oracle)."""
    if need_listing and not shop.listed_products:
        return ListProducts()
    if need_coupons and not shop.listed_coupons:
        return ListCoupons()
    mine = [o for o in shop.orders.values() if o.customer == goal.customer]
    placed = [o for o in mine if o.status == "placed"]
    good = [o for o in placed if o.items == goal.items and o.coupon == goal.coupon]
    for o in placed:
        if o not in good[:1]:
            return CancelOrder(order_id=o.id)
    if good:
        return SubmitAnswer(answer=good[0].id)
    for sku, qty in goal.items.items():
        if shop.products[sku].stock < qty:
            return Restock(sku=sku, quantity=qty - shop.products[sku].stock)
    drafts = [o for o in mine if o.status == "draft"]
    if drafts and drafts[-1].coupon not in (None, goal.coupon):
        return CancelOrder(order_id=drafts[-1].id)
    if not drafts or (drafts[-1].coupon not in (None, goal.coupon)):
        return CreateOrder(customer=goal.customer)
    o = drafts[-1]
    for sku, qty in o.items.items():
        if goal.items.get(sku, 0) < qty:
            return RemoveItem(order_id=o.id, sku=sku)
    for sku, qty in goal.items.items():
        if o.items.get(sku, 0) < qty:
            return AddItem(order_id=o.id, sku=sku, quantity=qty - o.items.get(sku, 0))
    if goal.coupon and o.coupon != goal.coupon:
        return ApplyCoupon(order_id=o.id, code=goal.coupon)
    return Checkout(order_id=o.id)


class ApiEnv(ToolTaskEnv):
    env_id: ClassVar[str] = "envgym/ToolUse-API-v0"
    family: ClassVar[str] = "api"
    tools: ClassVar[tuple[type[Tool], ...]] = (
        ListProducts,
        ListCoupons,
        CreateOrder,
        AddItem,
        RemoveItem,
        ApplyCoupon,
        Restock,
        Checkout,
        CancelOrder,
        GetOrder,
        SubmitAnswer,
    )
    Params: ClassVar[type[ToolParams]] = ApiParams

    params: ApiParams

    def params_for(self, difficulty: float) -> ApiParams:
        return ApiParams(
            items=lerp_int(difficulty, 1, 4),
            products=lerp_int(difficulty, 6, 20),
            show_skus=difficulty < 0.5,
            short_stock=lerp_int(difficulty, 0, 2),
            coupon="none" if difficulty < 0.25 else ("given" if difficulty < 0.75 else "best"),
            hints=difficulty <= 0.5,
            slack=lerp_int(difficulty, 5, 3),
            candidates=lerp_int(difficulty, 3, 8),
        )

    def _shop(self, p: ApiParams) -> Shop:
        rng = self.task_rng
        goods = [
            (f"{a} {n}", c) for c, names in sorted(PRODUCTS_BY_CATEGORY.items()) for a in ADJECTIVES for n in names
        ]
        picks = rng.choice(len(goods), size=p.products, replace=False)
        products = {}
        for i, k in enumerate(picks.tolist()):
            name, cat = goods[k]
            sku = f"{cat[:2].upper()}-{101 + i}"
            capacity = int(rng.integers(12, 30))
            products[sku] = Product(
                sku, name, cat, round(float(rng.uniform(3, 120)), 2), int(rng.integers(6, capacity)), capacity
            )
        cats = sorted({pr.category for pr in products.values()})
        coupons = {}
        for i in range(int(rng.integers(3, 6))):
            cat = None if i == 0 or rng.random() < 0.3 else cats[int(rng.integers(len(cats)))]
            code = f"{'SAVE' if cat is None else cat[:4].upper()}{int(rng.integers(5, 40))}"
            coupons[code] = Coupon(
                code, int(code[-2:]) if code[-2:].isdigit() else 10, float(rng.choice([0, 20, 50, 100, 200])), cat
            )
        people = full_names()
        customers = [people[i] for i in rng.choice(len(people), size=4, replace=False)]
        return Shop(products, coupons, customers)

    def _build(self, p: ApiParams) -> ToolTask:  # type: ignore[override]
        rng = self.task_rng
        for _ in range(200):
            shop = self._shop(p)
            skus = sorted(shop.products)
            wanted = [skus[i] for i in rng.choice(len(skus), size=min(p.items, len(skus)), replace=False)]
            items = {s: int(rng.integers(1, 6)) for s in wanted}
            for s in wanted[: p.short_stock]:
                shop.products[s].stock = int(rng.integers(0, items[s]))
                items[s] = max(items[s], 1)
            valid = [c for c in sorted(shop.coupons) if coupon_problem(shop, items, c) is None]
            coupon: str | None = None
            if p.coupon == "given" and valid:
                coupon = valid[int(rng.integers(len(valid)))]
            elif p.coupon == "best" and valid:
                ranked = sorted(valid, key=lambda c: -discount(shop, items, c))
                if len(ranked) > 1 and discount(shop, items, ranked[0]) == discount(shop, items, ranked[1]):
                    continue
                coupon = ranked[0]
            if p.coupon != "none" and coupon is None:
                continue
            break
        else:
            raise RuntimeError("could not generate a feasible shop task; try another seed")
        self.shop = shop
        self.goal = Goal(shop.customers[int(rng.integers(len(shop.customers)))], items, coupon)
        self.need_listing = not p.show_skus
        self.need_coupons = p.coupon == "best"
        sim = copy.deepcopy(shop)
        gold: list[Tool] = []
        while not isinstance(call := plan(sim, self.goal, self.need_listing, self.need_coupons), SubmitAnswer):
            execute(sim, call)
            gold.append(call)
        order_id = str(call.answer)
        lines = [f"{q} x {shop.products[s].name}" + (f" (sku {s})" if p.show_skus else "") for s, q in items.items()]
        if p.coupon == "given":
            coupon_text = f" Apply coupon {coupon}."
        elif p.coupon == "best":
            coupon_text = " Apply the coupon that gives this order the largest discount (see list_coupons)."
        else:
            coupon_text = " Use no coupon."
        intro = (
            "You operate a shop through its API tools. Rules: only draft orders can change; checkout needs enough "
            "stock for every item (restock up to the product's capacity); coupons have minimum subtotals and some "
            "apply to one category only.\n\n"
            f"Task: customer {self.goal.customer} wants exactly: {'; '.join(lines)}.{coupon_text} Place (check out) "
            "one order with exactly these items, then call `submit_answer` with the order id."
        )
        candidates = [f"O-{1001 + i}" for i in range(p.candidates)]
        expected = Expected(kind="text", value=order_id)
        return ToolTask(intro, expected, gold, order_id, candidates)

    def _state_check(self) -> tuple[bool, str]:
        placed = [o for o in self.shop.orders.values() if o.customer == self.goal.customer and o.status == "placed"]
        good = [o for o in placed if o.items == self.goal.items and o.coupon == self.goal.coupon]
        if good:
            self.task_spec.expected = Expected(kind="text", value=good[0].id)
        else:
            self.task_spec.expected = Expected(
                kind="text", value="the id of a placed order matching the task (none was placed)"
            )
        if len(placed) != 1 or not good:
            want = ", ".join(f"{s} x {q}" for s, q in self.goal.items.items())
            return (
                False,
                f"{self.goal.customer} needs exactly one placed order with {want}, coupon {self.goal.coupon or 'none'}",
            )
        return True, ""

    def _call_tool(self, call: Tool) -> StepOutcome:
        try:
            text = execute(self.shop, call)
        except RuleError as exc:
            return StepOutcome(
                feedback=Feedback(
                    summary=f"{call.name} refused; nothing changed.",
                    error=str(exc),
                    hint=self.hint("read the rules in the task; list_products and get_order show the current state"),
                )
            )
        return StepOutcome(feedback=Feedback(summary=f"{call.name}: ok.", details=text))

    def oracle_action(self) -> str:
        return plan(self.shop, self.goal, self.need_listing, self.need_coupons).to_action()

    def _random_call(self, tool: type[Tool], rng: np.random.Generator) -> Tool:
        skus = sorted(self.shop.products)
        sku = skus[int(rng.integers(len(skus)))]
        ids = sorted(self.shop.orders) or ["O-1001"]
        oid = ids[int(rng.integers(len(ids)))]
        qty = int(rng.integers(1, 6))
        if tool is ListProducts:
            return ListProducts()
        if tool is ListCoupons:
            return ListCoupons()
        if tool is CreateOrder:
            return CreateOrder(customer=self.shop.customers[int(rng.integers(len(self.shop.customers)))])
        if tool is AddItem:
            return AddItem(order_id=oid, sku=sku, quantity=qty)
        if tool is RemoveItem:
            return RemoveItem(order_id=oid, sku=sku)
        if tool is ApplyCoupon:
            codes = sorted(self.shop.coupons)
            return ApplyCoupon(order_id=oid, code=codes[int(rng.integers(len(codes)))])
        if tool is Restock:
            return Restock(sku=sku, quantity=qty)
        if tool is Checkout:
            return Checkout(order_id=oid)
        if tool is CancelOrder:
            return CancelOrder(order_id=oid)
        return GetOrder(order_id=oid)
