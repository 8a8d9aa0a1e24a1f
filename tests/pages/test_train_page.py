"""AppTest of the Train page: presets, validation, a short training, Stop."""

from tests.pages.support import live_batches, open_page, page_text, run_until

TRAIN = "pages/1_Train.py"


def test_preset_fills_the_form(app_env):
    at = open_page(TRAIN)
    assert at.number_input(key="train_b0_filters").value == 32  # the tutorial by default
    at.segmented_control(key="train_preset").set_value("fast").run()
    assert at.number_input(key="train_b0_filters").value == 16
    assert at.number_input(key="train_batch_size").value == 256
    assert at.number_input(key="train_epochs").value == 2
    assert at.number_input(key="train_first_stride").value == 2
    assert at.slider(key="train_label_smoothing").value == 0.1
    assert at.selectbox(key="train_lr_schedule").value == "one_cycle"
    at.segmented_control(key="train_preset").set_value("tutorial").run()
    assert at.number_input(key="train_b0_convs").value == 2
    assert at.number_input(key="train_batch_size").value == 32
    assert at.number_input(key="train_epochs").value == 10
    assert at.number_input(key="train_first_stride").value == 1
    assert at.slider(key="train_label_smoothing").value == 0.0
    # The whole configuration is in the URL.
    assert at.query_params["epochs"] == "10" and at.query_params["blocks"] == "32-3-2-p-0.25"
    assert "600,810 parameters" in page_text(at)


def test_the_url_reproduces_a_setup(app_env):
    at = open_page(TRAIN, {"blocks": "8-5-1-p-0_16-3-1-n-0.1", "epochs": "3", "optimizer": "sgd"})
    assert at.number_input(key="train_blocks").value == 2
    assert at.number_input(key="train_b0_kernel_size").value == 5
    assert at.checkbox(key="train_b1_pool").value is False
    assert at.selectbox(key="train_optimizer").value == "sgd"


def test_invalid_values_block_train_with_a_message(app_env):
    at = open_page(TRAIN)
    at.checkbox(key="train_early_stopping").check().run()
    assert at.button(key="train_start").disabled
    text = page_text(at)
    assert "set validation_split above 0" in text
    assert "Nothing starts until the fields marked above are fixed" in text
    at.slider(key="train_validation_split").set_value(0.1).run()
    assert not at.button(key="train_start").disabled


def small_setup(at, epochs: int, samples: int) -> None:
    at.segmented_control(key="train_preset").set_value("fast").run()
    at.toggle(key="train_subset").set_value(True).run()
    at.number_input(key="train_samples").set_value(samples).run()
    at.number_input(key="train_epochs").set_value(epochs).run()
    at.number_input(key="train_batch_size").set_value(64).run()


def test_short_training_finishes_and_is_listed(app_env):
    at = open_page(TRAIN)
    small_setup(at, epochs=1, samples=1000)
    at.button(key="train_start").click().run()
    at = run_until(at, lambda a: "**Finished** — Test accuracy" in page_text(a))
    text = page_text(at)
    assert "Test accuracy" in text
    table = at.dataframe[-1].value
    names = set(table["name"])
    assert "default" in names and len(names) == 2  # the new run, and the shipped model
    new = table[table["name"] != "default"]
    assert new["status"].tolist() == ["finished"] and new["epochs"].tolist() == [1]
    assert (app_env / "runs").is_dir() and len(list((app_env / "runs").iterdir())) == 1


def test_stop_ends_a_job_early_and_keeps_it(app_env):
    at = open_page(TRAIN)
    small_setup(at, epochs=30, samples=3000)
    at.button(key="train_start").click().run()
    at = run_until(at, lambda a: "Epoch 1/30" in str([p.proto.text for p in a.get("progress")]))
    at.button(key="train_stop").click().run()
    at = run_until(at, lambda a: "keeping what it learned" in page_text(a))
    table = at.dataframe[-1].value
    stopped = table[table["name"] != "default"]
    assert stopped["status"].tolist() == ["stopped"]
    assert stopped["epochs"].iloc[0] < 30


def test_runs_rename_delete_and_unreadable(app_env):
    from core.models import ConvBlock, ModelConfig, build_model
    from core.runs import RunStore

    cfg = ModelConfig(
        conv_blocks=(ConvBlock(2, 3, 1, True, 0.0),), dense_units=0, train_samples=500
    )
    store = RunStore(app_env / "runs")
    for name in ("alpha", "beta"):
        store.save_run(
            build_model(cfg),
            cfg,
            {"epoch": [1]},
            {"test_accuracy": 0.9, "test_loss": 0.3},
            {},
            name,
        )
    (app_env / "runs" / "broken").mkdir()
    (app_env / "runs" / "broken" / "config.json").write_text("{oops")
    at = open_page(TRAIN)
    assert "Run folder **broken** is unreadable" in page_text(at)
    assert set(at.dataframe[-1].value["name"]) == {"alpha", "beta", "default"}
    # The shipped default model cannot be deleted.
    at.selectbox(key="train_manage_run").set_value("default").run()
    assert at.button(key="train_delete").disabled
    # Rename, then delete only after confirming.
    at.selectbox(key="train_manage_run").set_value("alpha").run()
    at.text_input(key="train_rename_alpha").input("gamma").run()
    at.button(key="train_rename").click().run()
    assert set(at.dataframe[-1].value["name"]) == {"gamma", "beta", "default"}
    at.selectbox(key="train_manage_run").set_value("beta").run()
    assert at.button(key="train_delete").disabled
    at.checkbox(key="train_sure_beta").check().run()
    at.button(key="train_delete").click().run()
    assert set(at.dataframe[-1].value["name"]) == {"gamma", "default"}
    assert sorted(p.name for p in (app_env / "runs").iterdir()) == ["broken", "gamma"]


def test_a_failing_job_shows_its_reason_and_the_page_goes_on(app_env, monkeypatch):
    from core import training

    def out_of_memory(*args, **kwargs):
        raise MemoryError()

    monkeypatch.setattr(training, "build_model", out_of_memory)
    at = open_page(TRAIN)
    small_setup(at, epochs=1, samples=1000)
    at.button(key="train_start").click().run()
    at = run_until(at, lambda a: any("Failed" in e.value for e in a.error))
    failure = next(e.value for e in at.error if "Failed" in e.value)
    assert "Out of memory while training" in failure and "smaller" in failure
    # The rest of the page still works: runs listed, Train available again.
    assert "default" in set(at.dataframe[-1].value["name"])
    assert not at.button(key="train_start").disabled


def test_live_charts_are_light_while_training_and_interactive_on_request_or_at_the_end(app_env):
    at = open_page(TRAIN)
    small_setup(at, epochs=30, samples=3000)
    at.button(key="train_start").click().run()
    at = run_until(at, lambda a: live_batches(a) > 0)
    # While it trains: three SVG charts (loss, accuracy, learning rate), no Plotly figure.
    svgs = [m.value for m in at.markdown if m.value.startswith("<svg")]
    assert len(svgs) == 3 and not at.get("plotly_chart")
    seen = live_batches(at)
    at = run_until(at, lambda a: live_batches(a) > seen)  # and they move
    # On request: interactive charts while it trains, with the same curves.
    at.toggle(key="train_interactive").set_value(True).run()
    at = run_until(at, lambda a: len(a.get("plotly_chart")) == 3)
    assert not [m for m in at.markdown if m.value.startswith("<svg")]
    at.toggle(key="train_interactive").set_value(False).run()
    assert live_batches(at) > seen and not at.get("plotly_chart")
    at.button(key="train_stop").click().run()
    at = run_until(at, lambda a: "keeping what it learned" in page_text(a))
    # Ended: interactive either way.
    keys = sorted(c.proto.id.rsplit("-", 1)[-1] for c in at.get("plotly_chart"))
    assert [k for k in keys if k.startswith("train_chart_")] == [
        "train_chart_accuracy",
        "train_chart_loss",
        "train_chart_lr",
    ]
