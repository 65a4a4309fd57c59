"""Scale-out over a message broker (Redis Streams): edge nodes publish tracklet summaries, one
central associator gives global identities with the same ``Associator`` as a single process
and publishes its decisions back to the nodes.

- ``config``: ``PublishConfig`` (``adfl track --publish``) and broker URL parsing;
- ``messages``: the wire format (one Redis stream entry per tracklet, track end or tick mark);
- ``buffer``: the edge's bounded resend buffer while the broker is away (memory, or disk);
- ``edge``: ``RemoteAssociator``, what the pipeline talks to instead of an ``Associator``;
- ``central``: ``CentralAssociator`` behind ``adfl associate``.

``redis`` (the client) is imported only by ``edge`` and ``central``, when a run asks for them.
"""

from adfl_deploy.broker.config import BrokerError, BrokerUrl, PublishConfig, parse_broker_url

__all__ = ["BrokerError", "BrokerUrl", "PublishConfig", "parse_broker_url"]
