"""Tests for dataset/world/people.py and templates.py: unique names, unambiguous values, varied templates, the split."""
from dataset.world.people import ATTRIBUTE_VALUES, ATTRIBUTES, LANGS
from dataset.world.templates import BIO_TEMPLATES, ECHO_QUESTIONS, PARAPHRASE_QUESTIONS
from world_helpers import generated, out, people_of, world  # noqa: F401  (fixtures)


def test_names_are_unique_and_never_contain_a_value(world):
    people = world["people"]
    assert len(people) == 200
    for key in ("name_zh", "name_en"):
        names = [p[key] for p in people]
        assert len(set(names)) == len(names)
        assert not any(a != b and b.startswith(a) for a in names for b in names), "a name is a prefix of another"
    values = [v for table in ATTRIBUTE_VALUES.values() for pair in table for v in pair]
    for p in people:
        assert not any(v.casefold() in (p["name_zh"] + " " + p["name_en"]).casefold() for v in values)


def test_attribute_tables_are_bilingual_and_unambiguous():
    # 20-40 values per attribute, and no value contains another one (case-insensitive), so check_answer on one value
    # can never be satisfied by a different value.  birth_city and work_city share the city table on purpose.
    tables = {id(t): t for t in ATTRIBUTE_VALUES.values()}.values()
    for table in tables:
        assert 20 <= len(table) <= 40
    for lang in (0, 1):
        values = [pair[lang].casefold() for table in tables for pair in table]
        assert len(set(values)) == len(values)
        assert not [(a, b) for a in values for b in values if a != b and a in b]


def test_templates_are_varied():
    for lang in LANGS:
        for attr in ATTRIBUTES:
            assert len(set(BIO_TEMPLATES[lang][attr])) >= 5
            assert ECHO_QUESTIONS[lang][attr] and PARAPHRASE_QUESTIONS[lang][attr]


def test_people_split_in_halves_with_all_attributes(world):
    assert len(people_of(world, "train")) == len(people_of(world, "test")) == 100
    for p in world["people"]:
        for attr in ATTRIBUTES:
            assert p[attr]["zh"] and p[attr]["en"]
