"""After the fact: the audit topic (records, reading ranges back), replay through another model version,
and suggestions measured against coders' decisions."""
