"""Step 4c: the monthly reports environmental staff read, per operator, field and country.

``data`` reads the month's analytics tables once and cuts them per group (``ReportData``);
``tables`` turns that into rows with real headers; ``figures`` draws the charts (matplotlib),
``pdf`` lays out the PDF (reportlab), ``workbook`` writes the Excel workbook (openpyxl) and the
CSVs; ``publish`` renders a group's files and writes them to S3 (the ``emissions_report`` DAG) or
a local folder (``flarewatch report``). Everything but ``data.read_month`` and ``publish``'s
writers is a pure function of its input; the same tables give the same bytes.
"""
