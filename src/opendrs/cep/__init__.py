"""Complex event processing: threshold rules over samples, alarm state per rule and
entity, and the events rule actions produce."""
