"""Posting admin change forms as a browser would: every field and inline as the page rendered it."""


def change_form_data(response) -> dict:
    """The POST data of the change (or add) form in `response`, with its inlines' management forms;
    a test then overrides only the fields it changes."""
    data = {}

    def add(form):
        for name in form.fields:
            value = form[name].value()
            if value is not None:
                data[form.add_prefix(name)] = value

    add(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        add(inline.formset.management_form)
        for form in inline.formset.forms:
            add(form)
    return data
