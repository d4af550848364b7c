"""The embedded world's tools: a calculator, a people directory and two calendar tools, in both languages.

The directory covers every person of the world, held-out half included: a fact the model never memorised is
retrievable through a tool call, which is the point of tools for a small model.
"""
import datetime
import json
import os
import re
from typing import Callable

from toolcall.calculator import calculate
from toolcall.registry import Tool, ToolBox, ToolError

ATTRIBUTES = ("birth_date", "birth_city", "university", "major", "employer", "work_city")
WEEKDAY_NAMES = {"en": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
                 "zh": ["星期一", "星期二", "星期三", "星期四", "星期五", "星期六", "星期日"]}
_MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december"]

CALCULATOR = Tool(
    "calculator", "Arithmetic with + - * / % and parentheses.",
    {"type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"]},
    lambda expression: calculate(expression))


def _month(name: str) -> int | None:
    return _MONTHS.index(name.lower()) + 1 if name.lower() in _MONTHS else None


def _month_name(day: datetime.date) -> str:
    return _MONTHS[day.month - 1].capitalize()


# How dates are written: (pattern, its (year, month, day) fields, how a date is written back, language). The
# year-less ones are read only where a year is not needed (days_after's "May 20").
_FULL_DATES = [
    (r"(\d{4})-(\d{1,2})-(\d{1,2})", lambda m: (m[1], m[2], m[3]), datetime.date.isoformat, "en"),
    (r"(\d{4})年(\d{1,2})月(\d{1,2})日", lambda m: (m[1], m[2], m[3]),
     lambda d: f"{d.year}年{d.month}月{d.day}日", "zh"),
    (r"([A-Za-z]+) (\d{1,2}), (\d{4})", lambda m: (m[3], _month(m[1]), m[2]),
     lambda d: f"{_month_name(d)} {d.day}, {d.year}", "en"),
]
_YEARLESS_DATES = [
    (r"(\d{1,2})月(\d{1,2})日", lambda m: (None, m[1], m[2]), lambda d: f"{d.month}月{d.day}日", "zh"),
    (r"([A-Za-z]+) (\d{1,2})", lambda m: (None, _month(m[1]), m[2]), lambda d: f"{_month_name(d)} {d.day}", "en"),
]
# A year that is not a leap year, for dates written without one ("May 20"): February 29 is then refused.
_YEARLESS = 2001


def _read_date(text: str, tool: str, formats) -> tuple[datetime.date, Callable[[datetime.date], str], str] | None:
    """(date, its writer, language) of the first format `text` is written in; None when it is in none."""
    for pattern, fields, write, lang in formats:
        if not (m := re.fullmatch(pattern, text)):
            continue
        year, month, day = fields(m)
        if month is None:  # a word that is not a month name
            continue
        try:
            return datetime.date(int(year) if year else _YEARLESS, int(month), int(day)), write, lang
        except ValueError:
            raise ToolError(f"{tool}: {text!r} is not a real date") from None
    return None


def parse_date(text: str, tool: str = "weekday") -> tuple[datetime.date, str]:
    """(date, language) from "1977-07-12", "July 12, 1977" or "1977年7月12日"; errors name `tool`."""
    text = text.strip()
    hit = _read_date(text, tool, _FULL_DATES)
    if hit is None:
        raise ToolError(f"{tool}: cannot read the date {text!r} (write 1977-07-12, July 12, 1977 or 1977年7月12日)")
    return hit[0], hit[2]


def weekday(date: str) -> str:
    day, lang = parse_date(date)
    return WEEKDAY_NAMES[lang][day.weekday()]


WEEKDAY = Tool(
    "weekday", "Day of the week of a date.",
    {"type": "object", "properties": {"date": {"type": "string"}}, "required": ["date"]},
    weekday)


_MAX_DAYS = 36500


def _shift(start: str, days: int) -> str:
    for names in WEEKDAY_NAMES.values():
        folded = [n.casefold() for n in names]
        if start.casefold() in folded:
            return names[(folded.index(start.casefold()) + days) % 7]
    hit = _read_date(start, "days_after", _FULL_DATES + _YEARLESS_DATES)
    if hit is None:
        raise ToolError(f"days_after: cannot read the start {start!r} (a weekday such as Thursday or 星期四, or a date "
                        "such as May 20, 5月20日 or 1977-07-12)")
    day, write, _lang = hit
    try:
        return write(day + datetime.timedelta(days))
    except OverflowError:
        raise ToolError(f"days_after: {start!r} plus {days} days is out of the calendar") from None


def days_after(start: str, weeks: int, days: int) -> str:
    """The weekday or date `weeks` weeks and `days` days after `start`, written as start is."""
    total = 7 * weeks + days
    if abs(total) > _MAX_DAYS:
        raise ToolError(f"days_after: at most {_MAX_DAYS} days either way, got {total}")
    return _shift(start.strip(), total)


DAYS_AFTER = Tool(
    "days_after", "The weekday or date that many weeks and days after start.",
    {"type": "object", "properties": {"start": {"type": "string"}, "weeks": {"type": "integer"},
                                      "days": {"type": "integer"}},
     "required": ["start", "weeks", "days"]},
    days_after)


def lookup_tool(people: list[dict]) -> Tool:
    """lookup_person over the world's people; a Chinese name gets the Chinese value, an English name the English."""
    index = {}
    for p in people:
        index[p["name_zh"]] = (p, "zh")
        index[p["name_en"].casefold()] = (p, "en")

    def lookup_person(name: str, attribute: str) -> str:
        hit = index.get(name.strip()) or index.get(name.strip().casefold())
        if hit is None:
            raise ToolError(f"lookup_person: no person named {name!r} in the directory")
        person, lang = hit
        return person[attribute][lang]

    return Tool(
        "lookup_person", "A fact about a person.",
        {"type": "object", "properties": {"name": {"type": "string"},
                                          "attribute": {"type": "string", "enum": list(ATTRIBUTES)}},
         "required": ["name", "attribute"]},
        lookup_person)


def directory_of(world: dict) -> list[dict]:
    """Everyone lookup_person knows in a world.json: its people and its directory-only people."""
    return list(world["people"]) + list(world.get("directory", []))


def read_world_people(world_dir: str) -> list[dict]:
    """Everyone lookup_person knows in {world_dir}/world.json: OSError when the file cannot be read, ValueError
    naming it when it is not a world file."""
    path = os.path.join(world_dir, "world.json")
    with open(path, encoding="utf-8") as f:
        try:
            return directory_of(json.load(f))
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise ValueError(f"{path} is not a world file ({e})") from None


def world_toolbox(people: list[dict] | None = None, timeout_s: float = 2.0) -> ToolBox:
    """calculator, weekday and days_after, plus lookup_person when the world's people are given."""
    tools = [CALCULATOR, WEEKDAY, DAYS_AFTER] + ([lookup_tool(people)] if people else [])
    return ToolBox(tools, timeout_s=timeout_s)
