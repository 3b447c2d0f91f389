"""Reads a sextant CSV export with pandas as docs/exports.md recommends and
prints one JSON object a row: sample, le, value, time and the labels the row
has. TestPandas compares them with the snapshot the table was written from.

Usage: python3 read_pandas.py export.csv
"""

import json
import sys

import pandas as pd


def read(path):
    # The recipe of docs/exports.md: label cells stay text ("" where a series
    # lacks the label, and "NA" or "None" stay what they are), numbers are
    # float64 with NaN, +Inf and -Inf, times are UTC timestamps.
    return pd.read_csv(
        path,
        keep_default_na=False,
        na_values={"le": [""], "value": ["NaN"], "exemplar_value": ["", "NaN"],
                   "time": [""], "start_time": [""]},
        parse_dates=["time", "start_time"],
    )


def main():
    df = read(sys.argv[1])
    assert str(df["value"].dtype) == "float64", df["value"].dtype
    assert str(df["le"].dtype) == "float64", df["le"].dtype
    assert str(df["time"].dtype).startswith("datetime64"), df["time"].dtype
    labels = [c for c in df.columns if c.startswith("label_")]
    for row in df.to_dict("records"):
        print(json.dumps({
            "sample": row["sample"],
            "le": None if pd.isna(row["le"]) else repr(float(row["le"])),
            "value": repr(float(row["value"])),
            "time": None if pd.isna(row["time"]) else row["time"].isoformat(),
            "labels": {c[len("label_"):]: row[c] for c in labels if row[c] != ""},
        }, ensure_ascii=False))


if __name__ == "__main__":
    main()
