"""Timing helpers and the fixed question set shared by `qa bench` and `qa bench --scale`."""
from __future__ import annotations

import time
from typing import Callable, Iterable

from eval.metrics import percentile

# A fixed mix: figures, lists, paraphrases, and two questions the article cannot answer.
QUESTIONS = [
    "2025年失业保险参保人数是多少？", "四防是什么？", "基础养老金最低标准提高到多少？", "社会保障卡持卡人数有多少？",
    "社会保障发挥着哪三个作用？", "年纪大走不动路的老人怎么办社保？", "企业年金要怎么改进？", "社保卡能办哪些事？",
    "为什么要建立职业伤害保障制度？", "三项社会保险基金总收入是多少？", "失业了每个月能领多少钱？", "延迟退休是按什么原则实施的？",
    "住房公积金怎么提取？", "明天北京会下雨吗？", "医保报销比例是多少？", "国际劳工局统计了多少个国家和地区？",
    "社保服务圈是多大范围？", "覆盖全民是什么意思？", "公平统一要实现哪三种公平？", "个人养老金制度要怎么完善？",
]


def summary(ms: list[float]) -> dict:
    """p50/p95/p99 and count of a list of milliseconds."""
    return {"p50": percentile(ms, 50), "p95": percentile(ms, 95), "p99": percentile(ms, 99), "n": len(ms)}


def timed(fn: Callable, items: Iterable, rounds: int) -> list[float]:
    """Milliseconds of ``fn(item)`` for every item, ``rounds`` times over."""
    items = list(items)
    out = []
    for _ in range(rounds):
        for item in items:
            t = time.perf_counter()
            fn(item)
            out.append((time.perf_counter() - t) * 1000)
    return out
