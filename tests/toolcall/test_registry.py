"""One executor for every caller: schema-checked arguments, a time limit, and clear errors."""
import time

import pytest

from toolcall.registry import Tool, ToolBox, ToolError
from toolcall.world import parse_date, world_toolbox

PEOPLE = [{"name_zh": "蒋宇雪", "name_en": "Jiang Yuxue",
           "birth_date": {"zh": "1977年7月12日", "en": "July 12, 1977"}, "birth_city": {"zh": "苏州", "en": "Suzhou"},
           "university": {"zh": "嘉林师范大学", "en": "Jialin Normal University"},
           "major": {"zh": "英语", "en": "English"}, "employer": {"zh": "鼎信保险", "en": "Dingxin Insurance"},
           "work_city": {"zh": "南京", "en": "Nanjing"}}]


@pytest.fixture(scope="module")
def box():
    return world_toolbox(PEOPLE)


def test_world_tools(box):
    assert box.run("lookup_person", {"name": "Jiang Yuxue", "attribute": "birth_city"}) == "Suzhou"
    assert box.run("lookup_person", '{"name": "蒋宇雪", "attribute": "employer"}') == "鼎信保险"
    assert box.run("lookup_person", {"name": "jiang yuxue", "attribute": "major"}) == "English"
    assert box.run("calculator", {"expression": "2020 - 1977"}) == "43"
    assert box.run("weekday", {"date": "July 12, 1977"}) == "Tuesday"
    assert box.run("weekday", {"date": "1977年7月12日"}) == "星期二"
    assert box.run("weekday", {"date": "1977-07-12"}) == "Tuesday"
    assert [s["function"]["name"] for s in box.schemas()] == ["calculator", "weekday", "days_after", "lookup_person"]
    assert [s["function"]["name"] for s in world_toolbox().schemas()] == ["calculator", "weekday", "days_after"]


@pytest.mark.parametrize("start, weeks, days, result", [
    ("Thursday", 0, 12, "Tuesday"), ("星期四", 0, 12, "星期二"), ("sunday", 1, 1, "Monday"),
    ("May 20", 1, 1, "May 28"), ("5月20日", 1, 1, "5月28日"), ("December 25", 1, 0, "January 1"),
    ("2月28日", 0, 1, "3月1日"),  # dates without a year count in a year that is not a leap year
    ("1977-07-12", 0, 30, "1977-08-11"), ("1977年7月12日", 2, 0, "1977年7月26日"), ("July 12, 1977", 0, -12, "June 30, 1977"),
])
def test_days_after_writes_the_result_as_start_is_written(box, start, weeks, days, result):
    assert box.run("days_after", {"start": start, "weeks": weeks, "days": days}) == result


@pytest.mark.parametrize("name, args, reason", [
    ("search", {}, "unknown tool 'search'"),
    ("calculator", {}, "missing argument(s) expression"),
    ("calculator", {"expression": 3}, "must be of type string"),
    ("calculator", {"expression": "1", "x": 1}, "unknown argument 'x'"),
    ("calculator", "{not json", "not valid JSON"),
    ("calculator", "[1]", "must be a JSON object"),
    ("calculator", {"expression": "__import__('os')"}, "not allowed in a calculation"),
    ("lookup_person", {"name": "Nobody", "attribute": "major"}, "no person named 'Nobody'"),
    ("lookup_person", {"name": "Jiang Yuxue", "attribute": "age"}, "must be one of"),
    ("weekday", {"date": "2021-02-30"}, "not a real date"),
    ("weekday", {"date": "yesterday"}, "cannot read the date"),
    ("days_after", {"start": "May 20", "weeks": 1}, "missing argument(s) days"),
    ("days_after", {"start": "May 20", "weeks": "1", "days": 0}, "must be of type integer"),
    ("days_after", {"start": "May 20", "weeks": 1.5, "days": 0}, "must be of type integer"),
    ("days_after", {"start": "February 29", "weeks": 0, "days": 1}, "'February 29' is not a real date"),
    ("days_after", {"start": "2021-02-30", "weeks": 0, "days": 1}, "days_after: '2021-02-30' is not a real date"),
    ("days_after", {"start": "13月1日", "weeks": 0, "days": 1}, "not a real date"),
    ("days_after", {"start": "next Friday", "weeks": 0, "days": 1}, "cannot read the start"),
    ("days_after", {"start": "Monday", "weeks": 10 ** 12, "days": 0}, "at most 36500 days"),
    ("days_after", {"start": "9999-12-31", "weeks": 0, "days": 5}, "out of the calendar"),
])
def test_bad_calls_are_tool_errors(box, name, args, reason):
    with pytest.raises(ToolError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        box.run(name, args)
    assert box.respond(name, args).startswith("error: ")


def test_time_limit_and_recovery():
    slow = Tool("slow", "sleeps", {"type": "object", "properties": {"s": {"type": "number"}}}, lambda s: time.sleep(s))
    fast = Tool("fast", "echo", {"type": "object", "properties": {}}, lambda: "ok")
    box = ToolBox([slow, fast], timeout_s=0.2)
    t0 = time.perf_counter()
    with pytest.raises(ToolError, match="timed out after 0.2 s"):
        box.run("slow", {"s": 3})
    assert box.run("fast", {}) == "ok"  # not stuck behind the abandoned call
    assert time.perf_counter() - t0 < 2


def test_bool_is_not_an_integer():
    t = Tool("t", "", {"type": "object", "properties": {"n": {"type": "integer"}}}, lambda n: n)
    with pytest.raises(ToolError, match="must be of type integer"):
        ToolBox([t]).run("t", {"n": True})


def test_parse_date_languages():
    assert parse_date("March 3, 2001")[1] == "en" and parse_date("2001年3月3日")[1] == "zh"


def test_call_records_what_is_judged(box):
    assert box.call("calculator", {"expression": "2+5"}) == {
        "name": "calculator", "arguments": {"expression": "2+5"}, "result": "7", "known": True, "valid": True,
        "ok": True}
    bad = box.call("calculator", {"expr": "1"})
    assert bad["known"] and not bad["valid"] and not bad["ok"] and bad["result"].startswith("error: ")
    unknown = box.call("search", {})
    assert not unknown["known"] and not unknown["valid"] and "unknown tool" in unknown["result"]
    failing = box.call("lookup_person", {"name": "Nobody", "attribute": "major"})
    assert failing["valid"] and not failing["ok"]  # well-formed, but the tool found nothing
