"""What the subscribers app tells the apps above it.

subscribers sits low in the layers (newsletter ← subscribers ← subscribers.billing ←
issues ← issues.sending) and may not import the apps that also keep data about a
subscriber. Where its services need them (erasing a person, exporting what is
stored about them), they send one of these signals and each higher app connects its
receiver in its AppConfig.ready(). A signal, not a call, because the lower layer
must not know who listens; Django's Signal.send() lets a receiver's exception
through, so a receiver can stop an erasure.
"""

from django.dispatch import Signal

# Sent by suppress_address() for a "deleted" suppression, inside its transaction and
# before anything is written or erased, with subscribers (a queryset of the records
# about to go) and email (the address). Each receiver erases its app's part (billing
# cancels the Stripe subscription, sending scrubs the send history). One that
# cannot raises ErasureRefused: the transaction rolls back and nothing is erased.
subscriber_erasing = Signal()

# Sent by export_subscriber_data() with subscriber. Each receiver returns a dict of
# sections added to the person's export (billing: "membership").
subscriber_data_exporting = Signal()


class ErasureRefused(Exception):
    """An app could not erase its part, so nothing was erased; str() is the
    message for the person."""


# Sent by the unsubscribe page when a subscriber left through an issue email's link
# (or its one-click POST), whether they left that issue's newsletter or all of
# them, with subscriber_id and issue_id (an issue they were sent, see
# newsletter_of_sent_issue). The analytics app counts the unsubscribe against it.
subscriber_left = Signal()

# Sent by the unsubscribe page to learn which newsletter an email's link leaves,
# with subscriber_id and issue_id (the issue the link names, from the address: not
# signed). The sending app answers with the id of that issue's newsletter if the
# subscriber was sent the issue, else None; with no answer the link leaves every
# newsletter, as a link from before newsletters did.
newsletter_of_sent_issue = Signal()
