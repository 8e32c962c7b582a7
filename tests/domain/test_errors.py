"""The error tree: one root, grouped by what the caller does, remedies as data."""

from __future__ import annotations

import pytest

from smslink.audience.readers import AudienceError
from smslink.domain.errors import (
    Action,
    Busy,
    ConfigurationRefused,
    Halted,
    InvalidInput,
    Problem,
    Remedy,
    SmslinkError,
)
from smslink.domain.phone import PhoneError
from smslink.domain.template import MissingValue, TemplateError
from smslink.engine import InputError, LeaseLost, RepeatedSend, RunBusy, RunHalted
from smslink.store import AlreadyExists, InUse, NotFound, RunConflict, SchemaTooNew
from smslink.store.secrets import SecretError, UnsafePathError


@pytest.mark.parametrize(
    ("error", "group"),
    [
        (InputError, InvalidInput),
        (RepeatedSend, InvalidInput),
        (AudienceError, InvalidInput),
        (TemplateError, InvalidInput),
        (MissingValue, InvalidInput),
        (PhoneError, InvalidInput),
        (NotFound, InvalidInput),
        (AlreadyExists, InvalidInput),
        (InUse, InvalidInput),
        (RunConflict, InvalidInput),
        (SecretError, ConfigurationRefused),
        (UnsafePathError, ConfigurationRefused),
        (SchemaTooNew, ConfigurationRefused),
        (RunBusy, Busy),
        (RunHalted, Halted),
        (LeaseLost, Halted),
    ],
)
def test_every_error_smslink_raises_on_purpose_has_one_root_and_one_group(
    error: type[Exception], group: type[SmslinkError]
) -> None:
    assert issubclass(error, group) and issubclass(error, SmslinkError)
    groups = (InvalidInput, ConfigurationRefused, Busy, Halted)
    assert sum(issubclass(error, g) for g in groups) == 1


def test_input_problems_make_the_message_and_a_single_remedy_travels_with_them() -> None:
    remedy = Remedy(Action.MAP_FIELD, {"placeholder": "City"})
    error = InvalidInput(problems=[Problem("mapping.City", "<City> is not mapped", remedy)])

    assert str(error) == "<City> is not mapped"
    assert error.remedy == remedy and error.remedy["placeholder"] == "City"
