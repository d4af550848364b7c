"""The embedded world's tools: a calculator, a people directory and two calendar tools, in both languages.

The directory covers every person of the world, held-out half included: a fact the model never memorised is
retrievable through a tool call, which is the point of tools for a small model.
"""
import datetime
import json
import os
import re

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


def parse_date(text: str, tool: str = "weekday") -> tuple[datetime.date, str]:
    """(date, language) from "1977-07-12", "July 12, 1977" or "1977年7月12日"; errors name `tool`."""
    text = text.strip()
    try:
        if m := re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", text):
            return datetime.date(int(m[1]), int(m[2]), int(m[3])), "en"
        if m := re.fullmatch(r"(\d{4})年(\d{1,2})月(\d{1,2})日", text):
            return datetime.date(int(m[1]), int(m[2]), int(m[3])), "zh"
        if (m := re.fullmatch(r"([A-Za-z]+) (\d{1,2}), (\d{4})", text)) and m[1].lower() in _MONTHS:
            return datetime.date(int(m[3]), _MONTHS.index(m[1].lower()) + 1, int(m[2])), "en"
    except ValueError:
        raise ToolError(f"{tool}: {text!r} is not a real date") from None
    raise ToolError(f"{tool}: cannot read the date {text!r} (write 1977-07-12, July 12, 1977 or 1977年7月12日)")


def weekday(date: str) -> str:
    day, lang = parse_date(date)
    return WEEKDAY_NAMES[lang][day.weekday()]


WEEKDAY = Tool(
    "weekday", "Day of the week of a date.",
    {"type": "object", "properties": {"date": {"type": "string"}}, "required": ["date"]},
    weekday)


# A year that is not a leap year, for dates written without one ("May 20"): February 29 is then refused.
_YEARLESS = 2001
_MAX_DAYS = 36500


def _shift(start: str, days: int) -> str:
    for names in WEEKDAY_NAMES.values():
        folded = [n.casefold() for n in names]
        if start.casefold() in folded:
            return names[(folded.index(start.casefold()) + days) % 7]
    try:
        if m := re.fullmatch(r"(\d{1,2})月(\d{1,2})日", start):
            day = datetime.date(_YEARLESS, int(m[1]), int(m[2])) + datetime.timedelta(days)
            return f"{day.month}月{day.day}日"
        if (m := re.fullmatch(r"([A-Za-z]+) (\d{1,2})", start)) and m[1].lower() in _MONTHS:
            day = datetime.date(_YEARLESS, _MONTHS.index(m[1].lower()) + 1, int(m[2])) + datetime.timedelta(days)
            return f"{_MONTHS[day.month - 1].capitalize()} {day.day}"
    except ValueError:
        raise ToolError(f"days_after: {start!r} is not a real date") from None
    if re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})|(\d{4})年(\d{1,2})月(\d{1,2})日|[A-Za-z]+ \d{1,2}, \d{4}", start):
        day, lang = parse_date(start, "days_after")
        try:
            day += datetime.timedelta(days)
        except OverflowError:
            raise ToolError(f"days_after: {start!r} plus {days} days is out of the calendar") from None
        if "-" in start:
            return day.isoformat()
        return f"{day.year}年{day.month}月{day.day}日" if lang == "zh" else \
            f"{_MONTHS[day.month - 1].capitalize()} {day.day}, {day.year}"
    raise ToolError(f"days_after: cannot read the start {start!r} (a weekday such as Thursday or 星期四, or a date "
                    "such as May 20, 5月20日 or 1977-07-12)")


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
