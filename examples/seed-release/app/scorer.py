"""Keeps the score of a Dou Dizhu (Fight the Landlord) game."""
import platform

from flask import Flask, jsonify, request

app = Flask(__name__)
scores = {"landlord": 0, "farmers": 0}


@app.get("/")
def index():
    return jsonify(scores=scores, machine=platform.machine())


@app.post("/round")
def record_round():
    body = request.get_json(force=True)
    winner = body["winner"]
    stake = int(body.get("stake", 1)) * 2 ** int(body.get("bombs", 0))
    scores[winner] += stake
    return jsonify(scores=scores)
