"""The behavioural suite and the identity-bias metrics on the sample-trained model, held to
the floors recorded for that model in training/suites/floors.json ("sample"). The full
model's floors ("full") are checked by ``make eval``; this test keeps the mechanism itself
(suite scoring, bias AUCs, floor check) exercised in CI, where no full-data model exists."""

from training import behaviour


def test_sample_model_stays_above_its_recorded_floors(scorer):
    suite_report = behaviour.evaluate_suite(
        behaviour.read_suite(), behaviour.scorer_decider(scorer)
    )
    bias_report = behaviour.evaluate_bias(behaviour.read_bias_set(), scorer)
    floors = behaviour.read_floors("sample")
    # every functionality has a floor, and none is below it
    assert set(floors["behaviour"]) == set(suite_report["functionalities"])
    failures = behaviour.check_floors(suite_report, bias_report, floors)
    assert not failures, "\n".join(map(str, failures))


def test_every_functionality_has_a_full_model_floor():
    floors = behaviour.read_floors("full")
    functionalities = set(behaviour.read_suite()["functionality"])
    assert set(floors["behaviour"]) == functionalities
    assert set(floors["bias"]) == set(behaviour.BIAS_METRICS)
