/* ioffice--0.1--0.2.sql, built by make from the files of sql/upgrade/0.1--0.2/:
 * brings an installed ioffice 0.1 to 0.2.  Every schema change of 0.2 is here,
 * one concern per file; tests/t/010_upgrade.pl checks that the result equals a
 * fresh 0.2 install. */

\echo Use "ALTER EXTENSION ioffice UPDATE TO '0.2'" to load this file. \quit
