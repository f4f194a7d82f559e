"""Lead screens: rubric editor, review rounds, agreement dashboard, adjudication."""
