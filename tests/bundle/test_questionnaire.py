"""Audit questionnaires: the schema's rules, answer checks, the shipped template, and the bundle key."""

from __future__ import annotations

import math
from pathlib import Path

import builders
import pytest
import yaml

from assay.bundle import BundleError, read_bundle
from assay.bundle.questionnaire import (
    MAX_QUESTIONS,
    MAX_TEXT_ANSWER,
    QUESTION_TYPES,
    REQUIREMENTS,
    STAGES,
    Questionnaire,
    load_answers,
    load_questionnaire,
    template,
    template_text,
)

SMALL = """\
id: small
version: "1.0"
title: A small questionnaire
sections:
  - id: basics
    title: Basics
    questions:
      - id: purpose
        text: What is the model for?
        type: text
        required: true
        stage: planning
        requirement: clinical
      - id: consent
        text: Was consent obtained?
        type: yes_no
        required: true
        stage: development
        requirement: ethical
        references: ["GDPR Art. 7"]
      - id: cases
        text: How many cases?
        type: number
        stage: validation
        requirement: technical
      - id: collected
        text: When did collection end?
        type: date
        stage: development
        requirement: technical
      - id: licence
        text: Which licence?
        type: single_choice
        options: [Open, Proprietary]
        stage: deployment
        requirement: regulatory
      - id: groups
        text: Which groups were tested?
        type: multiple_choice
        options: [Age, Sex, Device]
        stage: validation
        requirement: clinical
"""


def problems_of(text: str, file: str = "audit/questionnaire.yaml") -> list:
    with pytest.raises(BundleError) as caught:
        load_questionnaire(text, file)
    return caught.value.errors


def one_problem(text: str) -> object:
    errors = problems_of(text)
    assert len(errors) == 1, [str(p) for p in errors]
    return errors[0]


@pytest.fixture
def small() -> Questionnaire:
    return load_questionnaire(SMALL)


# --- the schema --------------------------------------------------------------------------------------


def test_small_questionnaire_loads_with_every_field(small):
    assert (small.id, small.version, small.title) == ("small", "1.0", "A small questionnaire")
    assert [q.id for q in small.questions()] == ["purpose", "consent", "cases", "collected", "licence", "groups"]
    consent = small.question("consent")
    assert (consent.type, consent.required, consent.stage, consent.requirement) == (
        "yes_no",
        True,
        "development",
        "ethical",
    )
    assert consent.references == ["GDPR Art. 7"]
    assert small.question("licence").options == ["Open", "Proprietary"]
    assert small.question("nope") is None


def test_sha256_ignores_layout_and_comments_but_not_content(small):
    relaid = "# a comment\n" + yaml.safe_dump(yaml.safe_load(SMALL), sort_keys=True, width=40)
    assert load_questionnaire(relaid).sha256() == small.sha256()
    changed = SMALL.replace("What is the model for?", "What is the model meant for?")
    assert load_questionnaire(changed).sha256() != small.sha256()
    assert len(small.sha256()) == 64


def test_stored_schema_reads_back_to_the_same_questionnaire(small):
    again = Questionnaire.model_validate(small.as_json())
    assert again == small and again.sha256() == small.sha256()


def test_duplicate_question_id_is_reported_at_its_second_use():
    text = SMALL.replace("      - id: cases\n", "      - id: consent\n")
    problem = one_problem(text)
    assert problem.code == "duplicate_question_id"
    assert problem.file == "audit/questionnaire.yaml"
    assert problem.line == text.splitlines().index("      - id: consent", 20) + 1
    assert problem.key == "sections.0.questions.2.id"
    assert "'consent' is used twice (first on line 14)" in problem.message


def test_duplicate_question_id_across_sections_and_duplicate_section_id():
    data = yaml.safe_load(SMALL)
    repeated = dict(data["sections"][0]["questions"][0])
    data["sections"].append({"id": "basics", "title": "Again", "questions": [repeated]})
    codes = sorted(p.code for p in problems_of(yaml.safe_dump(data, sort_keys=False)))
    assert codes == ["duplicate_question_id", "duplicate_section_id"]


@pytest.mark.parametrize(
    ("old", "new", "code", "key", "words"),
    [
        ("type: date", "type: essay", "bad_value", "sections.0.questions.3.type", "'text', 'yes_no'"),
        ("stage: planning", "stage: design", "bad_value", "sections.0.questions.0.stage", "'monitoring'"),
        ("requirement: ethical", "requirement: legal", "bad_value", "sections.0.questions.1.requirement", "'ethical'"),
        ("      - id: purpose", "      - id: Purpose-1", "bad_value", "sections.0.questions.0.id", "pattern"),
        ("        required: true\n        stage: planning", "        requried: true\n        stage: planning",
         "questionnaire_unknown_key", "sections.0.questions.0.requried", "did you mean 'required'?"),
        ("version: \"1.0\"", "version: 1.10", "bad_value", "version", "write the version in quotes"),
        ("options: [Open, Proprietary]", "options: [yes, Proprietary]", "bad_value", "sections.0.questions.4.options.0",
         "put it in quotes"),
        ("options: [Open, Proprietary]", "options: [Open]", "bad_value", "sections.0.questions.4",
         "needs at least two options"),
        ("options: [Age, Sex, Device]", "options: [Age, Sex, Age]", "bad_value", "sections.0.questions.5",
         "['Age'] are listed twice"),
        ("        type: number\n", "        type: number\n        options: [a, b]\n", "bad_value",
         "sections.0.questions.2", "options apply to single_choice and multiple_choice only"),
        ("title: Basics", "title: ''", "bad_value", "sections.0.title", "at least 1 character"),
        ("        text: How many cases?\n", "", "missing_key", "sections.0.questions.2.text", "'text' is missing"),
    ],
)  # fmt: skip
def test_schema_rules_name_the_key_and_line(old, new, code, key, words):
    assert old in SMALL
    problem = one_problem(SMALL.replace(old, new, 1))
    assert (problem.code, problem.key) == (code, key), str(problem)
    assert words in problem.message
    assert problem.file == "audit/questionnaire.yaml" and problem.line is not None


def test_options_are_required_for_choice_types():
    problem = one_problem(SMALL.replace("        options: [Open, Proprietary]\n", ""))
    assert problem.key == "sections.0.questions.4"
    assert "a single_choice question needs at least two options" in problem.message


def test_text_lengths_are_bounded():
    problem = one_problem(SMALL.replace("What is the model for?", "x" * 1001))
    assert (problem.code, problem.key) == ("bad_value", "sections.0.questions.0.text")
    assert "at most 1000 characters" in problem.message


def test_not_a_mapping_and_empty_file():
    assert one_problem("- a\n- b\n").code == "not_a_mapping"
    assert one_problem("").code == "not_a_mapping"


# --- hostile input -------------------------------------------------------------------------------------


def test_more_questions_than_the_limit_are_refused_before_validation():
    question = "      - {id: q%d, text: Q, type: yes_no, stage: planning, requirement: technical}\n"
    head = SMALL.split("    questions:\n")[0] + "    questions:\n"
    text = head + "".join(question % i for i in range(MAX_QUESTIONS + 1))
    problem = one_problem(text)
    assert problem.code == "questionnaire_too_large"
    assert f"{MAX_QUESTIONS + 1} questions; the limit is {MAX_QUESTIONS}" in problem.message


def test_oversized_file_is_refused():
    problem = one_problem(SMALL + "# " + "x" * (1024 * 1024) + "\n")
    assert problem.code == "questionnaire_too_large"


def test_alias_bomb_is_stopped_by_the_safe_yaml_reader():
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]" for i in range(1, 12)]
    problem = one_problem("\n".join(lines) + "\n")
    assert problem.code == "yaml_too_large"
    assert problem.file == "audit/questionnaire.yaml"


def test_python_tags_are_refused():
    hostile = SMALL.replace("title: A small questionnaire", 'title: !!python/object/apply:os.system ["id"]')
    problem = one_problem(hostile)
    assert problem.code == "yaml_unsafe_tag" and problem.line == 3


def test_syntax_errors_name_the_line():
    problem = one_problem(SMALL.replace("        type: yes_no", "       type: yes_no"))
    assert problem.code == "yaml_syntax" and problem.line is not None


# --- answers -------------------------------------------------------------------------------------------


def test_a_complete_set_of_valid_answers_has_no_problems(small):
    answers = {
        "purpose": "Grading diabetic retinopathy",
        "consent": True,
        "cases": 600,
        "collected": "2024-03-01",
        "licence": "Open",
        "groups": ["Age", "Device"],
    }
    assert small.validate_answers(answers, complete=True) == []
    assert small.validate_answers({"cases": 1.5}, complete=False) == []


def test_draft_may_leave_questions_out_but_complete_may_not(small):
    assert small.validate_answers({"purpose": "x"}, complete=False) == []
    assert small.validate_answers({"purpose": "x"}, complete=True) == [
        "question 'consent' is required and has no answer"
    ]
    assert small.validate_answers({"purpose": "   ", "consent": None}, complete=True) == [
        "question 'purpose' is required and has no answer",
        "question 'consent' is required and has no answer",
    ]


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        ({"consnt": True}, "'consnt' is not a question of questionnaire small 1.0; did you mean 'consent'?"),
        ({"zzz": 1}, "'zzz' is not a question of questionnaire small 1.0"),
        ({"consent": "yes"}, "question 'consent': expected yes or no (true or false), got 'yes'"),
        ({"consent": 1}, "question 'consent': expected yes or no (true or false), got 1"),
        ({"cases": True}, "question 'cases': expected a number, got True"),
        ({"cases": "12"}, "question 'cases': expected a number, got '12'"),
        ({"cases": math.nan}, "question 'cases': expected a finite number, got nan"),
        ({"cases": math.inf}, "question 'cases': expected a finite number, got inf"),
        ({"cases": 10**400},
         "question 'cases': the number is too large to keep exactly (the limit is ±9,007,199,254,740,992)"),
        ({"collected": "01/03/2024"}, "question 'collected': expected a date written YYYY-MM-DD, got '01/03/2024'"),
        ({"collected": "2024-02-30"}, "question 'collected': '2024-02-30' is not a calendar date"),
        ({"licence": "GPL"}, "question 'licence': 'GPL' is not one of the options ['Open', 'Proprietary']"),
        ({"licence": ["Open"]}, "question 'licence': ['Open'] is not one of the options ['Open', 'Proprietary']"),
        ({"groups": "Age"}, "question 'groups': expected a list of options, got 'Age'"),
        ({"groups": ["Age", "Race"]}, "question 'groups': ['Race'] is not among the options ['Age', 'Sex', 'Device']"),
        ({"groups": ["Age", "Age"]}, "question 'groups': an option is chosen more than once"),
        ({"purpose": 42}, "question 'purpose': expected text, got 42"),
        ({"purpose": "x" * (MAX_TEXT_ANSWER + 1)},
         f"question 'purpose': the answer is {MAX_TEXT_ANSWER + 1} characters long; the limit is 20,000"),
    ],
)  # fmt: skip
def test_each_wrong_answer_gets_a_sentence_naming_the_question(small, answers, expected):
    assert small.validate_answers(answers, complete=False) == [expected]


def test_answers_that_are_not_a_mapping(small):
    assert small.validate_answers(["purpose"], complete=False) == [
        "answers must be a mapping of question id to answer, not a list"
    ]


def test_a_flood_of_unknown_answers_is_summarised(small):
    problems = small.validate_answers({f"junk{i}": 1 for i in range(10_000)}, complete=False)
    assert len(problems) == 51 and problems[-1] == "and 9950 more problems"


def test_answers_file_dates_become_iso_text(small):
    answers = load_answers("collected: 2024-03-01\nconsent: true\ngroups: [Age]\n")
    assert answers == {"collected": "2024-03-01", "consent": True, "groups": ["Age"]}
    assert small.validate_answers(answers, complete=False) == []
    assert load_answers("") == {}
    with pytest.raises(BundleError) as caught:
        load_answers("- a\n", "answers.yaml")
    assert caught.value.problems[0].code == "not_a_mapping"


# --- the FG-AI4H v1 template ---------------------------------------------------------------------------


def test_template_is_valid_coded_and_of_the_promised_size():
    q = template("fg-ai4h-v1")
    questions = list(q.questions())
    assert (q.id, q.version) == ("fg-ai4h-v1", "1.0")
    assert 25 <= len(questions) <= 40
    assert [s.id for s in q.sections] == [
        "purpose", "privacy", "clinical", "interpretability", "performance", "labelling", "engineering",
    ]  # fmt: skip
    assert {x.stage for x in questions} <= set(STAGES)
    assert {x.requirement for x in questions} == set(REQUIREMENTS)
    assert {x.type for x in questions} == set(QUESTION_TYPES)
    assert any("ISO 14971" in x.references for x in questions)
    assert any(x.required for x in questions) and not all(x.required for x in questions)


def test_template_text_is_what_template_loads_and_unknown_names_fail():
    assert load_questionnaire(template_text("fg-ai4h-v1")) == template()
    with pytest.raises(KeyError):
        template("fg-ai4h-v9")


def test_empty_answers_to_the_template_list_every_required_question():
    q = template()
    missing = q.validate_answers({}, complete=True)
    assert len(missing) == sum(x.required for x in q.questions())
    assert "question 'intended_use' is required and has no answer" in missing


# --- the bundle key ------------------------------------------------------------------------------------


def with_questionnaire(tmp_path: Path, text: str, key: str = "audit/questionnaire.yaml") -> Path:
    return builders.write_folder(
        tmp_path / "bundle", builders.minimal_config(questionnaire=key), extra={"audit/questionnaire.yaml": text}
    )


def test_bundle_reads_and_validates_its_questionnaire(tmp_path):
    with read_bundle(with_questionnaire(tmp_path, SMALL)) as bundle:
        assert bundle.config.questionnaire == "audit/questionnaire.yaml"
        assert bundle.questionnaire == load_questionnaire(SMALL)
        assert bundle.warnings == []


def test_bundle_without_the_key_has_no_questionnaire(tmp_path):
    with read_bundle(builders.write_folder(tmp_path / "bundle")) as bundle:
        assert bundle.questionnaire is None


def test_a_broken_questionnaire_is_reported_with_its_own_file_and_line(tmp_path):
    broken = SMALL.replace("type: date", "type: essay")
    with pytest.raises(BundleError) as caught:
        read_bundle(with_questionnaire(tmp_path, broken))
    (problem,) = caught.value.errors
    assert (problem.file, problem.line, problem.code) == ("audit/questionnaire.yaml", 28, "bad_value")


def test_a_missing_questionnaire_file_is_an_error_at_the_config_key(tmp_path):
    with pytest.raises(BundleError) as caught:
        read_bundle(with_questionnaire(tmp_path, SMALL, key="audit/missing.yaml"))
    (problem,) = caught.value.errors
    assert (problem.code, problem.file, problem.key) == ("file_not_found", "challenge_config.yaml", "questionnaire")


def test_questionnaire_path_may_not_leave_the_bundle(tmp_path):
    with pytest.raises(BundleError) as caught:
        read_bundle(with_questionnaire(tmp_path, SMALL, key="../questionnaire.yaml"))
    assert [p.code for p in caught.value.errors] == ["path_traversal"]
