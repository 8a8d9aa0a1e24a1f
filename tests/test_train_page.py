"""AppTest of the Train page: presets, validation, a short training, Stop."""

from tests.pages_support import open_page, page_text, run_until

TRAIN = "pages/1_Train.py"


def test_preset_fills_the_form(app_env):
    at = open_page(TRAIN)
    assert at.number_input(key="train_b0_filters").value == 32  # the tutorial by default
    at.segmented_control(key="train_preset").set_value("fast").run()
    assert at.number_input(key="train_b0_filters").value == 16
    assert at.number_input(key="train_batch_size").value == 256
    assert at.number_input(key="train_epochs").value == 4
    assert at.selectbox(key="train_lr_schedule").value == "one_cycle"
    at.segmented_control(key="train_preset").set_value("tutorial").run()
    assert at.number_input(key="train_b0_convs").value == 2
    assert at.number_input(key="train_batch_size").value == 32
    assert at.number_input(key="train_epochs").value == 10
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
