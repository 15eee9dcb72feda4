// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {Checkpoints} from "@openzeppelin/contracts/utils/structs/Checkpoints.sol";
import {IFirnJobMarket} from "./interfaces/IFirnJobMarket.sol";

/// @title FirnJobMarketAdmin
/// @notice The job market's cold governance path (setParameters), deployed once and
/// linked into FirnJobMarket, which reaches them by DELEGATECALL: they run on the market's storage,
/// emit the market's events and revert with the market's errors, so callers see no difference. Kept
/// out of the market's own code so that it stays well under the EIP-170 size limit (24,576 bytes)
/// without touching the paths every job takes (decision 1750).
/// @dev Only FirnJobMarket calls this, behind its `onlyOwner`: a direct call to a library's
/// state-changing function reverts (Solidity's library call guard), and could reach no market's
/// storage anyway.
library FirnJobMarketAdmin {
    using Checkpoints for Checkpoints.Trace208;

    /// @notice Upper bound of the protocol fee (basis points of the escrow); the market's
    /// MAX_PROTOCOL_FEE_BPS.
    uint16 internal constant MAX_PROTOCOL_FEE_BPS = 1000;

    /// @notice The market's governance parameters, in its storage layout (decision 1140: submitProof
    /// and finalize read the first slot, claimJob the second, disputes the third).
    struct Parameters {
        // slot A (the reward pool is the registry's, decision 1756)
        uint64 challengeWindow;
        uint16 protocolFeeBps;
        // slot B
        address guardian;
        uint96 claimBond;
        // slot C
        uint128 slashAmount;
        uint128 falseDisputeSlash;
    }

    /// @notice FirnJobMarket.setParameters after its owner check: validates in the market's order
    /// (fee bound, `pool` (the registry's reward pool) present for a fee, window fits uint32, then each amount fits its field),
    /// stores the parameters, records (slash amount, fee) for claims from this second on in `terms`
    /// (decision 1700) and emits ParametersUpdated.
    /// @dev Reverts InvalidProtocolFee, RewardPoolNotSet, TimeTooLarge, AmountTooLarge (claim bond
    /// over uint96) or SafeCastOverflowedUintDowncast (an amount over uint128).
    function setParameters(
        Parameters storage p,
        Checkpoints.Trace208 storage terms,
        address pool,
        uint64 newChallengeWindow,
        uint256 newSlashAmount,
        uint256 newClaimBond,
        uint16 newProtocolFeeBps,
        uint256 newFalseDisputeSlash
    ) external {
        if (newProtocolFeeBps > MAX_PROTOCOL_FEE_BPS) {
            revert IFirnJobMarket.InvalidProtocolFee(newProtocolFeeBps, MAX_PROTOCOL_FEE_BPS);
        }
        if (newProtocolFeeBps != 0 && pool == address(0)) revert IFirnJobMarket.RewardPoolNotSet();
        if (newChallengeWindow > type(uint32).max) {
            revert IFirnJobMarket.TimeTooLarge(newChallengeWindow, type(uint32).max);
        }
        p.challengeWindow = newChallengeWindow;
        p.slashAmount = SafeCast.toUint128(newSlashAmount);
        if (newClaimBond > type(uint96).max) revert IFirnJobMarket.AmountTooLarge(newClaimBond, type(uint96).max);
        p.claimBond = uint96(newClaimBond);
        p.protocolFeeBps = newProtocolFeeBps;
        p.falseDisputeSlash = SafeCast.toUint128(newFalseDisputeSlash);
        // Same packing as the market's constructor: slashAmount << 16 | feeBps.
        terms.push(uint48(block.timestamp), (uint208(uint128(newSlashAmount)) << 16) | newProtocolFeeBps);
        emit IFirnJobMarket.ParametersUpdated(
            newChallengeWindow, newSlashAmount, newClaimBond, newProtocolFeeBps, newFalseDisputeSlash
        );
    }
}
