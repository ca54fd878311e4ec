"""Effect programs: the cancel-order and exchange-items programs, all-or-nothing rollback, limits."""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import pytest

from aqwen_spec.expr import (
    EffectFailed,
    EvalError,
    EvalLimitError,
    Scope,
    check_program,
    execute,
    parse_program,
)
from aqwen_spec.types import BOOL, FLOAT, STR, EnumT, ListT, MapT, OptionalT, RecordT, VariantT

Payment = RecordT("Payment", {"method_id": STR, "amount": FLOAT})
Refund = RecordT("Refund", {"method_id": STR, "amount": FLOAT})
Item = RecordT("Item", {"item_id": STR, "product_id": STR, "price": FLOAT})
Exchange = RecordT(
    "Exchange",
    {"items": ListT(STR), "new_items": ListT(STR), "payment_method_id": STR, "price_difference": FLOAT},
)
Order = RecordT(
    "Order",
    {
        "id": STR,
        "status": EnumT(("pending", "delivered", "cancelled", "exchange requested")),
        "items": ListT(Item),
        "payments": ListT(Payment),
        "refunds": ListT(Refund),
        "exchange": OptionalT(Exchange),
    },
)
GiftCard = RecordT("GiftCard", {"id": STR, "kind": STR, "balance": FLOAT})
CreditCard = RecordT("CreditCard", {"id": STR, "kind": STR, "brand": STR})
Method = VariantT("PaymentMethod", "kind", {"gift_card": GiftCard, "credit_card": CreditCard})
Variant = RecordT("Variant", {"item_id": STR, "price": FLOAT, "available": BOOL})
Product = RecordT("Product", {"id": STR, "name": STR, "variants": MapT(Variant)})
STATE_TYPES = {"orders": MapT(Order), "payment_methods": MapT(Method), "products": MapT(Product)}

CANCEL = """
let order = orders[order_id]
if order.status != "pending" { fail f"order {order_id} cannot be cancelled: it is {order.status}" }
for p in order.payments {
  let method = payment_methods[p.method_id]
  if method.kind == "gift_card" {
    method.balance = round(method.balance + p.amount, 2)
  }
  append(order.refunds, {method_id: p.method_id, amount: round(p.amount, 2)})
}
order.status = "cancelled"
"""

EXCHANGE = """
let order = orders[order_id]
if order.status != "delivered" {
  fail f"order {order_id} is {order.status}: only delivered orders can be exchanged"
}
if len(item_ids) != len(new_item_ids) {
  fail f"{len(item_ids)} items to exchange but {len(new_item_ids)} new items"
}
for wanted_id in unique(item_ids) {
  let wanted = count(item_ids, it == wanted_id)
  let have = len([i for i in order.items if i.item_id == wanted_id])
  if have < wanted { fail f"order {order_id} has {have} of item {wanted_id}, cannot exchange {wanted}" }
}
let diff = 0.0
for old_id, new_id in zip(item_ids, new_item_ids) {
  let old = first([i for i in order.items if i.item_id == old_id])
  if old == null { fail f"order {order_id} has no item {old_id}" }
  let product = products[old.product_id]
  if new_id not in product.variants { fail f"item {new_id} is not a variant of {product.name}" }
  let variant = product.variants[new_id]
  if not variant.available { fail f"item {new_id} is not available" }
  diff += variant.price - old.price
}
let method = payment_methods[payment_method_id]
if method.kind == "gift_card" and method.balance < diff {
  fail format("gift card balance {} is less than the price difference {}", method.balance, round(diff, 2))
}
order.status = "exchange requested"
order.exchange = {
  items: item_ids,
  new_items: new_item_ids,
  payment_method_id: payment_method_id,
  price_difference: round(diff, 2),
}
"""


def make_state() -> dict[str, Any]:
    return {
        "orders": {
            "o1": {
                "id": "o1",
                "status": "pending",
                "items": [],
                "payments": [
                    {"method_id": "gc1", "amount": 10.005},
                    {"method_id": "cc1", "amount": 20.0},
                    {"method_id": "gc1", "amount": 0.1},
                ],
                "refunds": [],
                "exchange": None,
            },
            "o2": {
                "id": "o2",
                "status": "delivered",
                "items": [
                    {"item_id": "shirt-s", "product_id": "shirt", "price": 20.0},
                    {"item_id": "shirt-s", "product_id": "shirt", "price": 20.0},
                    {"item_id": "mug-red", "product_id": "mug", "price": 8.5},
                ],
                "payments": [],
                "refunds": [],
                "exchange": None,
            },
        },
        "payment_methods": {
            "gc1": {"id": "gc1", "kind": "gift_card", "balance": 5.0},
            "cc1": {"id": "cc1", "kind": "credit_card", "brand": "visa"},
            "gc0": {"id": "gc0", "kind": "gift_card", "balance": 1.0},
        },
        "products": {
            "shirt": {
                "id": "shirt",
                "name": "Shirt",
                "variants": {
                    "shirt-s": {"item_id": "shirt-s", "price": 20.0, "available": True},
                    "shirt-l": {"item_id": "shirt-l", "price": 22.5, "available": True},
                    "shirt-xl": {"item_id": "shirt-xl", "price": 25.0, "available": False},
                },
            },
            "mug": {
                "id": "mug",
                "name": "Mug",
                "variants": {
                    "mug-red": {"item_id": "mug-red", "price": 8.5, "available": True},
                    "mug-blue": {"item_id": "mug-blue", "price": 9.0, "available": True},
                },
            },
        },
    }


def dump(state: dict[str, Any]) -> str:
    return json.dumps(state)  # not sorted: key order must survive a rollback too


def test_programs_type_check() -> None:
    cancel_scope = Scope({**STATE_TYPES, "order_id": STR})
    assert check_program(parse_program(CANCEL), cancel_scope) == []
    exchange_scope = Scope(
        {
            **STATE_TYPES,
            "order_id": STR,
            "item_ids": ListT(STR),
            "new_item_ids": ListT(STR),
            "payment_method_id": STR,
        }
    )
    assert check_program(parse_program(EXCHANGE), exchange_scope) == []


def test_cancel_order_refunds_gift_cards() -> None:
    state = make_state()
    execute(parse_program(CANCEL), {"order_id": "o1"}, state)
    order = state["orders"]["o1"]
    assert order["status"] == "cancelled"
    assert order["refunds"] == [
        {"method_id": "gc1", "amount": 10.01},
        {"method_id": "cc1", "amount": 20.0},
        {"method_id": "gc1", "amount": 0.1},
    ]
    assert state["payment_methods"]["gc1"]["balance"] == 15.11
    assert "balance" not in state["payment_methods"]["cc1"]


def test_cancel_fails_cleanly() -> None:
    state = make_state()
    before = dump(state)
    with pytest.raises(EffectFailed, match="order o2 cannot be cancelled: it is delivered"):
        execute(parse_program(CANCEL), {"order_id": "o2"}, state)
    assert dump(state) == before


def test_rollback_midway_is_byte_identical() -> None:
    # The failure comes after balances, refunds, a map insertion and a deletion were already made.
    program = parse_program(
        CANCEL.replace('order.status = "cancelled"', "")
        + """
payment_methods["new"] = {id: "new", kind: "gift_card", balance: 0.0}
delete payment_methods["cc1"]
orders["o2"].items[0].price -= 1
remove(orders["o2"].items, orders["o2"].items[2])
extend(orders["o2"].refunds, [{method_id: "x", amount: 1.0}])
order.status = "cancelled"
if order.status == "cancelled" { fail f"refunded {len(order.refunds)} payments, then failed" }
"""
    )
    state = make_state()
    before = dump(state)
    snapshot = copy.deepcopy(state)
    with pytest.raises(EffectFailed, match="refunded 3 payments, then failed"):
        execute(program, {"order_id": "o1"}, state)
    assert dump(state) == before
    assert state == snapshot


def test_runtime_error_rolls_back() -> None:
    program = parse_program('orders["o1"].status = "cancelled"\nlet x = orders["nope"]')
    state = make_state()
    before = dump(state)
    with pytest.raises(EvalError, match="no entry 'nope'") as info:
        execute(program, {}, state)
    assert info.value.pos is not None and info.value.pos.line == 2
    assert dump(state) == before


def test_stored_values_are_copied() -> None:
    program = parse_program(
        'let r = {method_id: "a", amount: 1.0}\n'
        'append(orders["o1"].refunds, r)\nappend(orders["o2"].refunds, r)\n'
        'orders["o1"].refunds[0].amount = 2.0'
    )
    state = make_state()
    execute(program, {}, state)
    assert state["orders"]["o2"]["refunds"][0]["amount"] == 1.0
    assert state["orders"]["o1"]["refunds"][0]["amount"] == 2.0


def exchange(state: dict[str, Any], items: list[str], new: list[str], method: str = "gc1") -> None:
    env = {"order_id": "o2", "item_ids": items, "new_item_ids": new, "payment_method_id": method}
    execute(parse_program(EXCHANGE), env, state)


def test_exchange_items_succeeds_with_duplicates() -> None:
    state = make_state()
    exchange(state, ["shirt-s", "shirt-s"], ["shirt-l", "shirt-l"], "gc1")
    order = state["orders"]["o2"]
    assert order["status"] == "exchange requested"
    assert order["exchange"] == {
        "items": ["shirt-s", "shirt-s"],
        "new_items": ["shirt-l", "shirt-l"],
        "payment_method_id": "gc1",
        "price_difference": 5.0,
    }


@pytest.mark.parametrize(
    ("items", "new", "method", "message"),
    [
        (
            ["shirt-s", "shirt-s", "shirt-s"],
            ["shirt-l"] * 3,
            "gc1",
            "has 2 of item shirt-s, cannot exchange 3",
        ),
        (["shirt-s"], ["shirt-l", "shirt-l"], "gc1", "1 items to exchange but 2 new items"),
        (["shirt-s"], ["shirt-xl"], "gc1", "item shirt-xl is not available"),
        (["mug-red"], ["shirt-l"], "gc1", "item shirt-l is not a variant of Mug"),
        (["shirt-s", "mug-red"], ["shirt-l", "mug-blue"], "gc0", "gift card balance 1.0 is less than"),
    ],
)
def test_exchange_items_failures(items: list[str], new: list[str], method: str, message: str) -> None:
    state = make_state()
    before = dump(state)
    with pytest.raises(EffectFailed, match=message):
        exchange(state, items, new, method)
    assert dump(state) == before


def test_credit_card_pays_any_difference() -> None:
    state = make_state()
    exchange(state, ["shirt-s", "mug-red"], ["shirt-l", "mug-blue"], "cc1")
    assert state["orders"]["o2"]["exchange"]["price_difference"] == 3.0


def test_locals_and_control_flow() -> None:
    program = parse_program(
        """
        let total = 0
        let evens = []
        for i in range(10) {
          if i % 2 == 0 { append(evens, i) } elif i == 5 { total += 100 } else { total += i }
        }
        orders["o1"].id = f"{total}:{evens}"
        """
    )
    state = make_state()
    execute(program, {}, state)
    assert state["orders"]["o1"]["id"] == "120:[0, 2, 4, 6, 8]"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('remove(orders["o1"].refunds, 1)', "not in the list"),
        ('delete orders["zz"]', "no entry 'zz' to delete"),
        ('delete orders["o1"].items[0]', "'delete' works on map entries"),
        ('orders["o1"].items[5] = 1', "index 5 out of range"),
        ('append(orders["o1"].status, 1)', r"append\(\) needs a list"),
        ("let x = null\nx.y = 1", "cannot assign into null"),
    ],
)
def test_effect_runtime_errors(text: str, message: str) -> None:
    state = make_state()
    before = dump(state)
    with pytest.raises(EvalError, match=message):
        execute(parse_program(text), {}, state)
    assert dump(state) == before


def test_effect_limits_end_quickly() -> None:
    state = {"xs": list(range(1000)), "out": []}
    start = time.perf_counter()
    with pytest.raises(EvalLimitError):
        execute(parse_program("for a in xs { for b in xs { append(out, b) } }"), {}, state)
    assert state["out"] == []
    with pytest.raises(EvalLimitError):
        execute(parse_program("let s = [1]\nfor i in range(100) { s = s + s }"), {}, {})
    with pytest.raises(EvalLimitError):
        execute(parse_program('let s = "ab"\nfor i in range(100) { s += s }'), {}, {})
    assert time.perf_counter() - start < 2.0
