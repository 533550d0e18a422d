"""Perspective's ``v1alpha1`` messages, field for field as its clients send and read them
(camelCase on the wire, unknown fields refused as Google's proto JSON parser refuses them)."""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

ScoreType = Literal["PROBABILITY"]
#: the one score type this service (like Perspective for these attributes) returns
PROBABILITY: ScoreType = "PROBABILITY"


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TextEntry(Message):
    text: str
    type: Literal["PLAIN_TEXT"] | None = Field(
        None, description="only PLAIN_TEXT is supported, as at Perspective"
    )


class ArticleAndParentComment(Message):
    article: TextEntry | None = None
    parentComment: TextEntry | None = None


class Context(Message):
    """Accepted and ignored, as Perspective does."""

    entries: list[TextEntry] = []
    articleAndParentComment: ArticleAndParentComment | None = None


class AttributeParameters(Message):
    scoreType: ScoreType | None = None
    scoreThreshold: Annotated[float, Field(ge=0.0, le=1.0)] | None = None


class AnalyzeCommentRequest(Message):
    comment: TextEntry
    context: Context | None = None
    requestedAttributes: dict[str, AttributeParameters]
    languages: list[str] = []
    doNotStore: bool = Field(False, description="true: the comment's text is never stored")
    spanAnnotations: bool = Field(False, description="per-sentence span scores")
    clientToken: str | None = Field(None, max_length=512)
    sessionId: str | None = Field(None, max_length=512)
    communityId: str | None = Field(None, max_length=512)


class Score(BaseModel):
    value: float
    type: ScoreType = PROBABILITY


class SpanScore(BaseModel):
    begin: int
    end: int
    score: Score


class AttributeScores(BaseModel):
    summaryScore: Score
    spanScores: list[SpanScore] | None = None


class SuggestedScore(Message):
    value: Annotated[float, Field(ge=0.0, le=1.0)]
    type: ScoreType | None = None


class SuggestedSpanScore(Message):
    begin: int | None = None
    end: int | None = None
    score: SuggestedScore


class SuggestedAttributeScores(Message):
    summaryScore: SuggestedScore | None = None
    spanScores: list[SuggestedSpanScore] | None = None


class SuggestCommentScoreRequest(Message):
    comment: TextEntry
    context: Context | None = None
    attributeScores: dict[str, SuggestedAttributeScores]
    languages: list[str] = []
    communityId: str | None = Field(None, max_length=512)
    clientToken: str | None = Field(None, max_length=512)
    sessionId: str | None = Field(None, max_length=512)


class AnalyzeCommentResponse(BaseModel):
    attributeScores: dict[str, AttributeScores]
    languages: list[str]
    detectedLanguages: list[str] | None = None
    clientToken: str | None = None


class SuggestCommentScoreResponse(BaseModel):
    detectedLanguages: list[str] | None = None
    requestedLanguages: list[str] | None = None
    clientToken: str | None = None


class GoogleError(BaseModel):
    code: int = Field(description="the HTTP status")
    message: str
    status: str = Field(description="google.rpc.Code name, e.g. INVALID_ARGUMENT")
    details: list[dict] = []


class GoogleErrorPublic(BaseModel):
    """Google's error shape, which Perspective's clients parse."""

    error: GoogleError
