import mailfleet.content


def test_public_names_are_exactly_these() -> None:
    assert sorted(mailfleet.content.__all__) == [
        "CompiledTemplate",
        "HeaderInjectionError",
        "LEAD_VARIABLES",
        "MAX_REFERENCES",
        "MessageBuildError",
        "OutgoingMessage",
        "SENDER_VARIABLES",
        "SEND_POLICY",
        "Spintax",
        "SpintaxError",
        "TemplateError",
        "TemplateProblem",
        "build_message",
        "compile_template",
        "make_message_id",
        "parse_spintax",
        "render",
        "reply_subject",
        "spin",
        "template_variables",
        "thread_references",
    ]
    for name in mailfleet.content.__all__:
        assert getattr(mailfleet.content, name) is not None


def test_errors_are_value_errors() -> None:
    for error in (
        mailfleet.content.SpintaxError,
        mailfleet.content.TemplateError,
        mailfleet.content.MessageBuildError,
        mailfleet.content.HeaderInjectionError,
    ):
        assert issubclass(error, ValueError)
    assert issubclass(mailfleet.content.HeaderInjectionError, mailfleet.content.MessageBuildError)
